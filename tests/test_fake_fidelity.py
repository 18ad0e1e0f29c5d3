"""Where the fake's knowledge of Intercom and the tap's meet: a disagreement shows here.

The fake lists the message export's file kinds and columns from Intercom's texts
(packages/fake-intercom/fake_intercom/filekinds.py, sources there), the tap in its own
`FILE_KINDS`; every other test reads the fake's files through the tap, so a column the tap
misspells would otherwise only show as a null column.
"""

from __future__ import annotations

from fake_intercom.filekinds import KINDS

from tap_intercom_export.content.schemas import FILE_KINDS


def test_fake_and_tap_agree_on_every_file_kind_and_its_columns() -> None:
    assert list(KINDS) == list(FILE_KINDS), "kinds (or their order) differ"
    disagreements = {
        kind: {
            "only in the fake (Intercom's docs)": [c for c in KINDS[kind] if c not in spec.columns],
            "only in the tap": [c for c in spec.columns if c not in KINDS[kind]],
        }
        for kind, spec in FILE_KINDS.items()
        if list(KINDS[kind]) != list(spec.columns)
    }
    assert disagreements == {}
    assert sum(len(columns) for columns in KINDS.values()) > 200  # the receipt and overview lists
