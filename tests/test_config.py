"""Options of every stage from TOML; unknown keys are errors naming them."""

import pytest

from causal_hcc.cli import main
from causal_hcc.config import Config, defaults_toml, load_config
from causal_hcc.errors import CohortError


def test_defaults_round_trip_through_toml(tmp_path):
    path = tmp_path / "defaults.toml"
    path.write_text(defaults_toml())
    assert load_config(path) == Config()


def test_partial_file_overrides_only_its_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[adjust]\ncaliper_sd = 0.1\ncovariates = ['ecog', 'age']\n")
    config = load_config(path)
    assert config.adjust.caliper_sd == 0.1 and config.adjust.covariates == ("ecog", "age")
    assert config.adjust.bootstrap == 1000 and config.crude == Config().crude


def test_unknown_keys_and_wrong_types_are_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[adjust]\ncalliper = 0.1\nreplace = 'yes'\n[plots]\nx = 1\n")
    with pytest.raises(CohortError) as info:
        load_config(path)
    text = str(info.value)
    assert "[adjust] calliper: unknown option" in text
    assert "[adjust] replace: expected true or false" in text
    assert "[plots]: unknown section" in text


def test_cli_prints_defaults(capsys):
    assert main(["config", "--defaults"]) == 0
    assert "[adjust]" in capsys.readouterr().out
