"""The run folder's own names (chain/transfer/layout.py): what no listed file and no member may take."""

import pytest

from fusion_extract.chain.transfer.layout import reserved_name


@pytest.mark.parametrize(
    ("path", "reserved"),
    [
        ("_SUCCESS", "_SUCCESS"),
        ("_success", "_SUCCESS"),  # a reader's listing may not tell case apart
        ("_SUCCESS.tmp", "_SUCCESS"),  # a listing of <folder>/_SUCCESS matches it too
        ("_SUCCESS/x.csv", "_SUCCESS"),
        ("_Manifest.json.bak", "_manifest.json"),
        ("raw", "raw/"),
        ("RAW/a.zip", "raw/"),
        ("raw/deeper/x.csv", "raw/"),  # anywhere under raw/, however deep
        ("data/raw/x.csv", None),
        ("rawdata.csv", None),
        ("x_SUCCESS", None),
        ("sales.csv", None),
    ],
)
def test_reserved_name_is_the_run_folders_own_name_a_path_would_take_or_shadow(
    path: str, reserved: str | None
):
    # Given a path a listed file or an archive member would land at; When it is checked
    # Then it names the run folder's own name it would take or shadow, or nothing
    assert reserved_name(path) == reserved
