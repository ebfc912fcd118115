"""The markdown tables of a generated report, read back as cells, so that report tests compare
each row with the results it was made from instead of looking for substrings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Table:
    """One markdown table: its header cells and its body rows (the separator row dropped)."""

    header: list[str]
    rows: list[list[str]]

    def row(self, first_cell: str) -> dict[str, str]:
        """The one row whose first cell is ``first_cell``, as header -> cell (the header's
        names must be distinct)."""
        assert len(set(self.header)) == len(self.header), self.header
        [found] = [cells for cells in self.rows if cells[0] == first_cell]
        return dict(zip(self.header, found, strict=True))

    def column(self, name: str) -> list[str]:
        index = self.header.index(name)
        return [cells[index] for cells in self.rows]


def markdown_tables(text: str) -> list[Table]:
    """Every table in ``text``, in order; a row with another number of cells than its header
    fails the test."""
    tables: list[Table] = []
    current: Table | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not (stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1):
            current = None
            continue
        cells = [cell.strip() for cell in stripped[1:-1].split("|")]
        if current is None:
            current = Table(header=cells, rows=[])
            tables.append(current)
        elif all(cell and set(cell) <= set("-:") for cell in cells):
            continue
        else:
            assert len(cells) == len(current.header), (current.header, line)
            current.rows.append(cells)
    return tables


def only_table(text: str) -> Table:
    [table] = markdown_tables(text)
    return table
