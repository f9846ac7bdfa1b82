"""The machine a result was made on, as records name it."""

from __future__ import annotations

from idc_utils.core import host
from idc_utils.models import cards


def test_the_float_path_names_the_processor_and_the_onednn_setting(monkeypatch):
    monkeypatch.delenv(host.ONEDNN_VARIABLE, raising=False)
    facts = host.float_path()
    assert facts == {"processor": host.cpu_model(), "TF_ENABLE_ONEDNN_OPTS": "unset"}
    assert facts["processor"]  # /proc/cpuinfo's model name, or what platform knows
    monkeypatch.setenv(host.ONEDNN_VARIABLE, "0")
    assert host.float_path()["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_a_float_path_is_described_in_one_line_and_an_old_record_says_so():
    facts = {"processor": "AMD EPYC", "TF_ENABLE_ONEDNN_OPTS": "0", "tensorflow": "2.21.0"}
    assert host.describe_float_path(facts) == (
        "AMD EPYC, TensorFlow 2.21.0, TF_ENABLE_ONEDNN_OPTS 0"
    )
    assert host.describe_float_path(None) == "not recorded"
    # a model card records it with the versions beside it; a card from before says so
    card = {"trained_on": {"processor": "Intel Xeon", "TF_ENABLE_ONEDNN_OPTS": "unset"}}
    card["versions"] = {"tensorflow": "2.21.0"}
    assert cards.trained_on(card) == "Intel Xeon, TensorFlow 2.21.0, TF_ENABLE_ONEDNN_OPTS unset"
    assert cards.trained_on({"versions": {"tensorflow": "2.21.0"}}) == "not recorded"
