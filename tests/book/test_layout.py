"""The package keeps its shape: layered subpackages, no import cycles, short functions, and
chapters that depend only on the code they use (so that an edit re-runs only those chapters)."""

from __future__ import annotations

import nbformat
import pytest
from conftest import ROOT

from idc_utils.book import dependencies, notebooks
from idc_utils.book import package_map as pm

#: the DICOMweb code: the client, the Segmentation, slide analysis, the server, the app's tab
DICOMWEB = (
    "serving/dicomweb.py",
    "serving/segmentation.py",
    "serving/slide_analysis.py",
    "serving/orthanc.py",
    "serving/app/dicomweb_tab.py",
)
#: each chapter module of figures, and the chapters that show them
FIGURES = {
    "chapters/eda_figures.py": {"01_eda"},
    "chapters/preprocessing_figures.py": {"02_preprocessing"},
    "chapters/primer_figures.py": {"03_metrics_primer"},
    "chapters/imbalance_figures.py": {"04_smote_embeddings"},
    "chapters/training_figures.py": {"05_cnn_baseline", "06_efficientnet"},
    "chapters/evaluation_figures.py": {"07_evaluation"},
    "chapters/errors_figures.py": {"08_errors_and_levers"},
    "chapters/synthetic_figures.py": {"10_synthetic_patches"},
    "chapters/dicomweb_figures.py": {"11_dicomweb"},
}


@pytest.fixture(scope="module")
def closures():
    """The package modules each chapter of the book depends on, as the runner computes them."""
    out = {}
    for path in notebooks.chapter_notebooks(ROOT):
        code = notebooks.code_source(nbformat.read(path, as_version=4))
        out[path.stem] = dependencies.module_closure(code, ROOT / "idc_utils")
    return out


def test_subpackages_in_layers_without_cycles_or_long_functions():
    graph = pm.import_graph()
    assert len(pm.subpackages()) >= 4
    assert set(pm.subpackages()) == set(pm.LAYERS) - {"cli"}
    assert pm.cycles(graph) == []
    assert pm.long_functions() == []
    assert [(m, t) for m, ts in graph.items() for t in ts if pm.breaks_layers(m, t)] == []


def test_the_scans_find_what_they_look_for(tmp_path):
    """The cycle, layer and length checks fail when there is something to find."""
    assert pm.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert pm.breaks_layers("idc_utils.data.decode", "idc_utils.serving.predict")
    assert pm.breaks_layers("idc_utils.serving.predict", "idc_utils.training.loop")  # siblings
    assert not pm.breaks_layers("idc_utils.serving.predict", "idc_utils.models.cards")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    body = "\n".join(f"    x{k} = {k}" for k in range(85))
    (pkg / "long.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    assert pm.long_functions(pkg) == [(86, "pkg.long", "long")]


def test_the_dicomweb_code_is_only_in_the_chapters_that_use_it(closures):
    for name, modules in closures.items():
        uses = sorted(set(DICOMWEB) & set(modules))
        if name.startswith(("09_", "11_")):
            assert uses, name  # chapter 11 streams a slide; chapter 9 serves the app's tab
        else:
            assert not uses, f"{name} would re-run after a DICOMweb edit: it imports {uses}"


def test_each_chapters_figure_code_is_only_in_that_chapter(closures):
    for module, chapters in FIGURES.items():
        assert {n for n, mods in closures.items() if module in mods} == chapters, module


def test_chapters_depend_only_on_the_layers_they_use(closures):
    def layers(name):
        return {m.split("/")[0] for m in closures[name] if "/" in m}

    # reading the data needs no model, and no chapter needs the book's own machinery
    assert layers("01_eda") == {"core", "data", "studies", "chapters"}
    assert not any("book" in layers(name) for name in closures)
    # evaluating and explaining saved models needs no training code; serving needs none either
    assert "training" not in layers("07_evaluation")
    assert "training" not in layers("09_gradio_demo")


def test_the_code_map_names_every_module_in_its_layer():
    """book/package.md lists each layer's modules; it stays true to the package."""
    import re

    text = (ROOT / "book" / "package.md").read_text()
    listed: dict[str, set[str]] = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        layer = re.match(r"`(\w+)`", section).group(1)
        rows = re.findall(r"^\| (`[^|]+) \|", section, flags=re.M)
        listed[layer] = {m for row in rows for m in re.findall(r"`([\w.]+)`", row)}
    present: dict[str, set[str]] = {}
    for name in pm.modules():
        parts = name.split(".")
        if len(parts) > 2 and not name.endswith(".app"):  # a module, not a subpackage
            present.setdefault(parts[1], set()).add(".".join(parts[2:]))
    assert listed == present
