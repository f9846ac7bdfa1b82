"""The recipe study: its table and verdict, and the stored studies the book shows."""

from __future__ import annotations

import json
import shutil

import nbformat
from conftest import ROOT

from idc_utils.book import dependencies, notebooks
from idc_utils.chapters import profiles
from idc_utils.studies import recipe_study
from idc_utils.training import config


def test_stored_studies_the_chapters_read_are_in_the_repository():
    """Chapter code names its stored studies as ``"book" / "data" / "<file>"``: each must exist
    and be committed (not git-ignored), or a fresh clone's chapter says the study is missing."""
    import re
    import subprocess

    named = set()
    for nb in notebooks.chapter_notebooks(ROOT):
        code = notebooks.code_source(nbformat.read(nb, as_version=4))
        named |= set(re.findall(r'"book" / "data" / "([^"]+)"', code))
    assert {"recipe_study.json", "learning_curve.json"} <= named
    for name in sorted(named):
        path = ROOT / "book" / "data" / name
        assert path.is_file(), f"{path} is missing: run the tool that writes it"
        assert set(dependencies.stored_results(name, ROOT)) == {name}
        if (ROOT / ".git").exists() and shutil.which("git"):
            tracked = subprocess.run(
                ["git", "ls-files", "--error-unmatch", str(path)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            ).returncode
            assert tracked == 0, f"{path} is not committed: a fresh clone would not have it"


def test_the_sample_profile_trains_a_recipe_the_stored_study_measured():
    """Chapter 6 marks the study's row of the recipe chapter 5 trains: a profile changed without
    measuring it would leave the book's recipe outside the lever table."""

    study = json.loads((ROOT / "book" / "data" / "recipe_study.json").read_text())
    recipe = config.TrainConfig.for_transfer(profiles.profile_params("sample")).as_dict()
    chosen = recipe_study.book_variant(study, json.loads(json.dumps(recipe)))
    assert chosen is not None, "the sample profile's recipe is not a row of the recipe study"
    assert chosen != "reference"  # the study's start; the profile took its validation choice
    d = study["variants"][chosen]["tta"]["val_auc_vs_reference"]
    assert d[1] > 0, f"{chosen} is not better than the reference on validation: {d}"


def test_recipe_table_and_verdict_follow_the_validation_intervals():
    def variant(what, val_d, test_d):
        return {
            "what": what,
            "train_minutes": 3.0,
            "tta": {
                "val_auc": 0.9,
                "val_auc_vs_reference": val_d,
                "test": {"auc": [0.93, 0.9, 0.95]},
                "test_auc_vs_reference": test_d,
            },
        }

    study = {
        "variants": {
            "reference": variant("ref", [0, 0, 0], [0, 0, 0]),
            "a": variant("a", [0.01, -0.01, 0.02], [0.02, 0.01, 0.03]),
            "b": variant("b", [-0.02, -0.03, -0.01], [0.0, -0.01, 0.01]),
        }
    }
    t = recipe_study.table(study)
    assert (
        t.loc["a", "val: vs reference"] == "+0.0100 [-0.010, +0.020]"
        and t.loc["reference", "val: vs reference"] == ""
    )
    sentence = recipe_study.verdict(study)
    assert "no variant beat the reference" in sentence and "**b** did worse" in sentence
    study["variants"]["a"]["tta"]["val_auc_vs_reference"] = [0.02, 0.01, 0.03]
    assert recipe_study.verdict(study).startswith(
        "On the validation patients, **a** beat the reference"
    )
    # a seed-only variant is the yardstick of chance, never a recipe that "beat" the reference
    study["variants"]["seed_2"] = variant("seed", [0.03, 0.01, 0.05], [-0.004, -0.02, 0.01])
    sentence = recipe_study.verdict(study)
    assert "**seed_2** beat" not in sentence and "**a** beat the reference" in sentence
    assert "another seed (**seed_2**) moved validation AUC by +0.0300 and test AUC by -0.0040" in (
        sentence
    )


def test_the_book_recipe_row_is_found_by_recipe_and_named_in_table_and_verdict():
    def variant(recipe, val_d, test_d):
        return {
            "what": "w",
            "train_minutes": 5.0,
            "recipe": recipe,
            "tta": {
                "val_auc": 0.92,
                "val_auc_vs_reference": val_d,
                "test": {"auc": [0.94, 0.92, 0.96]},
                "test_auc_vs_reference": test_d,
            },
        }

    ref = {"finetune_lr": 2e-4, "augment": {"zoom": 0.1}, "seed": 1337}
    pair = {"finetune_lr": 5e-4, "augment": {"zoom": 0.0}, "seed": 1337}
    study = {
        "variants": {
            "reference": variant(ref, [0, 0, 0], [0, 0, 0]),
            "pair": variant(pair, [0.013, 0.006, 0.021], [0.017, 0.005, 0.03]),
            "seed_2": variant({**ref, "seed": 2}, [0.0003, -0.004, 0.006], [-0.002, -0.009, 0.003]),
            "pair_seed_2": variant(
                {**pair, "seed": 2}, [0.011, 0.004, 0.019], [0.015, 0.002, 0.03]
            ),
        }
    }
    # the chapter-5 card's recipe with another seed is still the row "pair" (not its seed twin)
    assert recipe_study.book_variant(study, {**pair, "seed": 7}) == "pair"
    assert recipe_study.book_variant(study, {**pair, "finetune_lr": 1e-4}) is None
    table = recipe_study.table(study, "pair")
    assert "pair (the book's recipe)" in table.index and "reference" in table.index
    sentence = recipe_study.verdict(study, "pair")
    # the seed-2 repeat confirms, it is not a second candidate
    assert sentence.startswith("On the validation patients, **pair** beat the reference")
    assert "**pair_seed_2**" not in sentence
    assert "Trained again with seed 2, **pair** moved validation AUC by +0.0110" in sentence
    assert "The book trains **pair** (it beat the reference on validation)" in sentence
    assert (
        "on test, read only as confirmation, it moved AUC by +0.0170 [+0.005, +0.030]" in sentence
    )
    assert "not a row of the study" in recipe_study.verdict(study, None)


def test_a_variant_changes_only_what_it_names_and_a_seed_repeat_pairs_with_seed_2():
    base = {"finetune_lr": 2e-4, "augment": {"zoom": 0.1, "hed": 0.03}, "seed": 1337}
    p = recipe_study.variant_params(base, {"augment": {"zoom": 0.0}, "finetune_lr": 5e-4})
    assert p == {"finetune_lr": 5e-4, "augment": {"zoom": 0.0, "hed": 0.03}, "seed": 1337}
    assert base["augment"]["zoom"] == 0.1  # the base is not changed
    assert recipe_study.compared_with("no_affine_seed_2") == "seed_2"
    assert recipe_study.compared_with("seed_2") == "reference"
    assert recipe_study.compared_with("lr_5e-4") == "reference"
