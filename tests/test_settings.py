from pathlib import Path

import pytest

from qa_bot.configdoc import reference
from qa_bot.settings import Settings, SettingsError, load_settings
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_repository_config_is_valid() -> None:
    settings = load_settings(Path(__file__).parent.parent / "config.yaml")
    assert settings.store.mode == "embedded"
    assert settings.store.path.is_absolute()


def test_unknown_key_names_key_and_allowed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(write(tmp_path, "store:\n  mdoe: server\n"))
    message = str(err.value)
    assert "store.mdoe" in message and "mode" in message and "collection" in message


def test_bad_value_names_key_and_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(write(tmp_path, "store:\n  mode: cloud\n"))
    assert "store.mode" in str(err.value) and "'embedded'" in str(err.value) and "'server'" in str(err.value)


def test_overlap_must_be_below_size(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="overlap_tokens"):
        load_settings(write(tmp_path, "chunking:\n  max_tokens: 64\n  overlap_tokens: 64\n"))


def test_relative_paths_resolve_against_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, "store:\n  path: here/chroma\n")
    monkeypatch.chdir("/")
    assert load_settings(config).store.path == tmp_path / "here" / "chroma"


def test_env_var_chooses_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_BOT_CONFIG", str(write(tmp_path, "store:\n  collection: fromenv\n")))
    assert load_settings().store.collection == "fromenv"


def test_missing_named_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


def test_configuration_page_is_current() -> None:
    """docs/configuration.md is generated from the settings' descriptions; a stale page fails here."""
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    regenerate = ".venv/bin/python -m qa_bot.configdoc > docs/configuration.md"
    assert page == reference(), f"docs/configuration.md is stale: {regenerate}"


def test_every_setting_is_described() -> None:
    for name, section in Settings.model_fields.items():
        model = section.annotation
        if name == "base_dir":
            continue
        assert model.__doc__ and model.__doc__.strip(), name
        for key, field in model.model_fields.items():
            assert field.description, f"{name}.{key} has no description"
            assert f"| `{key}` |" in reference()
