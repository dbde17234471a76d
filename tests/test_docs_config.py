import importlib.util
import pathlib

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def test_configuration_page_matches_the_settings_table():
    spec = importlib.util.spec_from_file_location("gen_config", DOCS / "_gen_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "configuration.md").read_text() == module.render(), (
        "docs/configuration.md is stale: run python docs/_gen_config.py"
    )
