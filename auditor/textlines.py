"""Line numbers of offsets in a text, and lines by number, found on demand."""

from __future__ import annotations

import bisect


class TextLines:
    """Line numbers of offsets in one text, and the text of lines, found on demand.

    Lines end at ``\\n``. Newlines are counted by ``str.count`` from the nearest line
    already known, so a file's positions cost about one pass of C code however many are
    asked for, and no table of every line is built.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts = [0]  # known line starts (offsets), ascending
        self._numbers = [1]  # their 1-based line numbers

    def position(self, offset: int) -> tuple[int, int]:
        """1-based ``(line, column)`` of a character offset (a column counts characters)."""
        text = self.text
        start = text.rfind("\n", 0, offset) + 1
        at = bisect.bisect_right(self._starts, start) - 1
        known = self._starts[at]
        line = self._numbers[at]
        if known != start:
            line += text.count("\n", known, start)
            self._starts.insert(at + 1, start)
            self._numbers.insert(at + 1, line)
        return line, offset - start + 1

    def line_start(self, line: int) -> int | None:
        """The offset where 1-based ``line`` starts, or None past the end of the text."""
        numbers, starts, text = self._numbers, self._starts, self.text
        at = bisect.bisect_right(numbers, line) - 1
        start, number = starts[at], numbers[at]
        if number == line:
            return start
        above = at + 1
        if above < len(numbers) and numbers[above] - line < line - number:
            # Nearer to a known line below it in the text: step back from there.
            start, number = starts[above], numbers[above]
            while number > line:
                start = text.rfind("\n", 0, start - 1) + 1
                number -= 1
        else:
            while number < line:
                newline = text.find("\n", start)
                if newline < 0:
                    return None
                start, number = newline + 1, number + 1
        starts.insert(above, start)
        numbers.insert(above, number)
        return start

    def line(self, line: int) -> str:
        """The text of 1-based ``line``, without its newline ("" past the end)."""
        start = self.line_start(line)
        if start is None:
            return ""
        end = self.text.find("\n", start)
        return self.text[start:] if end < 0 else self.text[start:end]
