"""Qt's item data roles as plain ints, for the ``data`` of models painted often, and how a
model answers several at once.

Qt hands ``data`` its role as an int; comparing that with an enum member is a Python call,
made for every role of every cell painted (seven roles a cell), so the hot models compare
with these instead.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import Qt

_R = Qt.ItemDataRole
DISPLAY, DECORATION, TOOLTIP, FONT, ALIGNMENT, FOREGROUND, DESCRIPTION, USER = (
    role.value for role in (_R.DisplayRole, _R.DecorationRole, _R.ToolTipRole, _R.FontRole, _R.TextAlignmentRole,
                            _R.ForegroundRole, _R.AccessibleDescriptionRole, _R.UserRole))
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


def answer(roles: Any, value_of: Callable[[int], Any]) -> None:
    """Fill a span of roles (``multiData``) with ``value_of(role)`` each. A role with no value is
    cleared, not left alone: Qt's item delegate keeps its array from cell to cell, so a role
    left as it was would show the cell before's."""
    for wanted in roles:
        value = value_of(wanted.role())
        if value is None:
            wanted.clearData()
        else:
            wanted.setData(value)
