"""A small VT100 screen model: what a terminal would show after the bytes a program wrote.

Enough of the protocol for prompt_toolkit's and plain output: text, CR, LF, BS,
cursor moves (CSI A/B/C/D/G/H), erase below or all (CSI J) and erase in line
(CSI K); modes, colours and requests are read and ignored. Tests ask what is on
the screen (the rows, the cursor's row) instead of guessing from the raw bytes.
"""

from __future__ import annotations

import re

_CSI = re.compile(r"\x1b\[([?>=]?)([0-9;]*)([@-~])")
_OTHER_ESC = re.compile(r"\x1b[()][A-Za-z0-9]|\x1b[=>78]|\x1b\][^\x07]*\x07")


class Screen:
    def __init__(self, rows: int, columns: int) -> None:
        self.rows, self.columns = rows, columns
        self.lines = [[" "] * columns for _ in range(rows)]
        self.row = self.column = 0
        self.cleared = 0  # how many times the whole screen was erased (CSI 2J)

    def feed(self, data: str) -> None:
        i = 0
        while i < len(data):
            match = _CSI.match(data, i) if data[i] == "\x1b" else None
            if match:
                self._csi(match.group(1), match.group(2), match.group(3))
                i = match.end()
                continue
            other = _OTHER_ESC.match(data, i) if data[i] == "\x1b" else None
            if other:
                i = other.end()
                continue
            self._char(data[i])
            i += 1

    def _char(self, ch: str) -> None:
        if ch == "\r":
            self.column = 0
        elif ch == "\n":
            self._line_feed()
        elif ch == "\x08":
            self.column = max(0, self.column - 1)
        elif ch >= " ":
            if self.column >= self.columns:
                self.column = 0
                self._line_feed()
            self.lines[self.row][self.column] = ch
            self.column += 1

    def _line_feed(self) -> None:
        if self.row == self.rows - 1:
            self.lines.pop(0)
            self.lines.append([" "] * self.columns)
        else:
            self.row += 1

    def _csi(self, private: str, params: str, final: str) -> None:
        if private:
            return  # modes (?25l, ?2004h ...)
        numbers = [int(p) if p else 0 for p in params.split(";")] if params else []
        n = max(1, numbers[0]) if numbers else 1
        if final == "A":
            self.row = max(0, self.row - n)
        elif final == "B":
            self.row = min(self.rows - 1, self.row + n)
        elif final == "C":
            self.column = min(self.columns - 1, self.column + n)
        elif final == "D":
            self.column = max(0, self.column - n)
        elif final == "G":
            self.column = min(self.columns - 1, n - 1)
        elif final == "H":
            self.row = min(self.rows - 1, n - 1)
            self.column = min(self.columns - 1, (numbers[1] if len(numbers) > 1 and numbers[1] else 1) - 1)
        elif final == "J":
            self._erase_display(numbers[0] if numbers else 0)
        elif final == "K":
            self._erase_line(numbers[0] if numbers else 0)

    def _erase_display(self, mode: int) -> None:
        if mode == 2:
            self.cleared += 1
            self.lines = [[" "] * self.columns for _ in range(self.rows)]
            return
        self._erase_line(0)
        for r in range(self.row + 1, self.rows):
            self.lines[r] = [" "] * self.columns

    def _erase_line(self, mode: int) -> None:
        line = self.lines[self.row]
        start, end = (self.column, self.columns) if mode == 0 else (0, self.columns)
        for c in range(start, end):
            line[c] = " "

    def text(self, row: int) -> str:
        return "".join(self.lines[row]).rstrip()

    @property
    def display(self) -> list[str]:
        return [self.text(r) for r in range(self.rows)]

    @property
    def cursor_line(self) -> str:
        return self.text(self.row)
