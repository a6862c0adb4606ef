"""What a secret looks like inside a file: private keys and well-known token formats."""

from __future__ import annotations

import re

SECRET_CONTENT = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----|aws_secret_access_key|_authToken|ghp_[A-Za-z0-9]{20,}|xox[bp]-")
SNIFF_MAX = 16 << 10  # keys and tokens live in small files; bigger ones are judged by name only
