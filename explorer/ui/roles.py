"""Qt's item data roles as plain ints, for the ``data`` of models painted often.

Qt hands ``data`` its role as an int; comparing that with an enum member is a Python call,
made for every role of every cell painted (seven roles a cell), so the hot models compare
with these instead.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

_R = Qt.ItemDataRole
DISPLAY, DECORATION, TOOLTIP, FONT, ALIGNMENT, FOREGROUND, DESCRIPTION, USER = (
    role.value for role in (_R.DisplayRole, _R.DecorationRole, _R.ToolTipRole, _R.FontRole, _R.TextAlignmentRole,
                            _R.ForegroundRole, _R.AccessibleDescriptionRole, _R.UserRole))
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
