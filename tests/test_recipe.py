"""The shipped model's recipe: argument lists that the real ``fit`` parser accepts."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from helpers import REPO, missing_data

from train import recipe, synth
from train.__main__ import config_from, fit_parser
from train.data import find_pairs
from train.fit import TrainConfig

DATA = REPO.parent / "shared" / "data"


def parse(argv: list[str]):
    return config_from(fit_parser().parse_args(["--out", "unused", *argv]))


def test_both_stages_parse_to_a_flattened_black_ink_config():
    base = parse(recipe.stage1())
    tune = parse(recipe.stage2("runs/x/base/model.keras"))
    assert base.page_norm and base.black_ink and not base.init
    assert tune.init == "runs/x/base/model.keras"
    assert tune.learning_rate < base.learning_rate


@pytest.mark.parametrize("year", recipe.DIBCO_YEARS)
def test_holding_out_a_year_drops_exactly_that_year(year):
    pairs = parse(recipe.stage2("m.keras", hold_out=year)).pairs
    everything = parse(recipe.stage2("m.keras")).pairs
    assert [p for p in everything if p not in pairs] == [str(recipe.DEFAULT_DATA / "dibco" / year)]


def test_unknown_hold_out_year_is_refused():
    with pytest.raises(ValueError, match="2014"):
        recipe.stage2("m.keras", hold_out="2014")


NEEDED = missing_data("noisyoffice/train", *(f"dibco/{y}" for y in recipe.DIBCO_YEARS))


@pytest.mark.skipif(NEEDED is not None, reason=str(NEEDED))
def test_every_folder_the_recipe_names_holds_pairs():
    for argv in (recipe.stage1(DATA), recipe.stage2("m.keras", DATA)):
        for folder in parse(argv).pairs:
            assert find_pairs(folder), folder


def test_stage2_kind_weights_name_only_kinds_the_generator_draws():
    # A typo in the recipe fails here, not minutes into a training run.
    synth.parse_kind_weights(parse(recipe.stage2("m.keras")).kind_weights)


def _recorded(key: str) -> dict:
    """A stage's settings as the shipped model's metadata records them; a setting added
    since has its default (that is what an older run used)."""
    from ocr_denoise import Denoiser
    return {**asdict(TrainConfig()), **json.loads(Denoiser(device="cpu").metadata[key])}


def _comparable(cfg: dict) -> dict:
    """A config without what depends on where the run happened: folder paths."""
    out = dict(cfg)
    out["pairs"] = [Path(p).parts[-2:] for p in out["pairs"]]
    out["init"] = bool(out["init"])
    return out


def test_the_recipe_is_what_made_the_shipped_model():
    # The model card's command must reproduce the shipped file: each stage's argument
    # list parses to the settings the ONNX metadata recorded for that stage.
    stage1 = asdict(parse(recipe.stage1()))
    stage2 = asdict(parse(recipe.stage2("base/model.keras")))
    assert _comparable(stage1) == _comparable(_recorded("init_training_config"))
    assert _comparable(stage2) == _comparable(_recorded("training_config"))


@pytest.mark.parametrize("name, extra", [
    ("stage1", []),
    # candidate "sep" (docs/model-history.md): the recipe with one flag and nothing else
    ("stage1-sep", ["--separable-output", "true"]),
])
def test_a_committed_stage1_checkpoint_is_the_recipes_stage1(name, extra):
    # train/checkpoints/* save the next fine-tune or DIBCO fold run the 20-35 minutes
    # of stage 1; each must be what the recipe's stage 1 makes, not a cousin.
    folder = REPO / "train" / "checkpoints" / name
    recorded = _comparable({**asdict(TrainConfig()),
                            **json.loads((folder / "config.json").read_text())})
    assert recorded == _comparable(asdict(parse([*recipe.stage1(), *extra])))
    assert (recorded != _comparable(asdict(parse(recipe.stage1())))) == bool(extra)
    history = json.loads((folder / "history.json").read_text())
    assert len(history["val_loss"]) == parse(recipe.stage1()).epochs
    assert (folder / "model.keras").stat().st_size > 100_000


def test_a_candidates_extra_stage2_flags_override_the_recipes_and_keep_the_rest():
    shipped = parse(recipe.stage2("m.keras", hold_out="2011"))
    cand = parse(recipe.stage2("m.keras", hold_out="2011",
                               extra=["--real-patches", "7", "--scan-fraction", "0.25"]))
    assert (cand.real_patches, cand.scan_fraction) == (7, 0.25)
    assert (shipped.real_patches, shipped.scan_fraction) != (7, 0.25)
    assert cand.pairs == shipped.pairs and cand.init == shipped.init


def test_the_residual_candidates_recipe_parses_to_a_residual_run_on_real_damage():
    cfg = parse(recipe.residual())
    assert cfg.arch == "residual" and cfg.real_fraction == 1.0 and not cfg.page_norm
    assert [Path(p).parts[-1] for p in cfg.paper] == ["ehri-dev", "img", "images"]
    assert cfg.pairs == [str(recipe.DEFAULT_DATA / "noisyoffice" / "train")]
