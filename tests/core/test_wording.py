"""How messages word a count."""

from idc_utils.core.wording import many


def test_a_count_is_plural_unless_it_is_one_and_has_thousands_separators():
    assert many(1, "file") == "1 file"
    assert (many(0, "file"), many(2048, "bad row")) == ("0 files", "2,048 bad rows")
