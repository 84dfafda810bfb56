"""Rejected parts merged on source_row (dataops/rejected_merge.py): records with quoted line
breaks stay whole, bytes are kept, ties keep chunk order, headers of later parts dropped."""

from __future__ import annotations

from pathlib import Path

from healthpipe.dataops.rejected_merge import merge_rejected_parts

HEADER = b"source_row,reject_reason,note\n"


def test_parts_merge_on_source_row_with_multi_line_records_whole(tmp_path: Path) -> None:
    part0 = HEADER + b'2,bad,"a\nb"\n9,bad,"x ""quoted"""\n'
    part1 = HEADER + b'5,malformed,"line\n\nbreaks"\n12,bad,\n'
    paths = []
    for i, data in enumerate((part0, part1)):
        paths.append((tmp_path / f"p{i}.csv", len(HEADER)))
        paths[-1][0].write_bytes(data)
    merge_rejected_parts(paths, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == (
        HEADER + b'2,bad,"a\nb"\n5,malformed,"line\n\nbreaks"\n9,bad,"x ""quoted"""\n12,bad,\n'
    )


def test_parts_without_rows_and_a_header_only_first_part(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(HEADER)
    second.write_bytes(HEADER + b"3,bad,\n")
    merge_rejected_parts([(first, len(HEADER)), (second, len(HEADER))], tmp_path / "o.csv")
    assert (tmp_path / "o.csv").read_bytes() == HEADER + b"3,bad,\n"
