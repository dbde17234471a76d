from __future__ import annotations

import pytest

from otel_sentry_biz import ConfigError, Settings
from otel_sentry_biz.config import VARIABLES

DSN = "http://public:secret@127.0.0.1:9/42"


def test_profile_defaults_follow_the_environment():
    dev = Settings.load({"SENTRY_ENVIRONMENT": "development"})
    prod = Settings.load({"SENTRY_ENVIRONMENT": "production"})
    assert (dev.profile, dev.traces_sample_rate, dev.debug) == ("development", 1.0, True)
    assert (prod.profile, prod.traces_sample_rate, prod.debug) == ("production", 0.05, False)
    assert Settings.load({}).profile == "production"


def test_variables_override_profile_and_arguments_override_variables():
    env = {"SENTRY_ENVIRONMENT": "production", "SENTRY_TRACES_SAMPLE_RATE": "0.3"}
    assert Settings.load(env).traces_sample_rate == 0.3
    assert Settings.load(env, traces_sample_rate=0.7).traces_sample_rate == 0.7


def test_explicit_profile_wins_over_environment_name():
    settings = Settings.load(
        {"SENTRY_ENVIRONMENT": "eu-prod-2", "OTEL_SENTRY_BIZ_PROFILE": "staging"}
    )
    assert settings.profile == "staging"
    assert settings.environment == "eu-prod-2"


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("SENTRY_TRACES_SAMPLE_RATE", "1.5", "between 0.0 and 1.0"),
        ("SENTRY_SAMPLE_RATE", "lots", "use a number from 0.0 to 1.0"),
        ("SENTRY_DEBUG", "maybe", "use true or false"),
        ("SENTRY_MAX_BREADCRUMBS", "-1", "positive integer"),
        ("OTEL_SENTRY_BIZ_PROFILE", "qa", "development, staging or production"),
        ("OTEL_SENTRY_BIZ_CLASSIFY", "ValueError", "ExceptionType=IMPACT/category"),
        ("SENTRY_DSN", "not-a-dsn", "https://<public_key>@<host>/<project_id>"),
    ],
)
def test_invalid_variable_names_itself_and_the_fix(variable, value, fix):
    with pytest.raises(ConfigError) as info:
        Settings.load({variable: value})
    assert variable in str(info.value)
    assert fix in str(info.value)


def test_dsn_secret_never_appears_in_errors():
    with pytest.raises(ConfigError) as info:
        Settings.load({"SENTRY_DSN": "http://pub:topsecret@host/notaproject"})
    assert "topsecret" not in str(info.value)


def test_invalid_argument_is_named():
    with pytest.raises(ConfigError, match="argument sample_rate"):
        Settings.load({}, sample_rate=2)
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load({}, sampel_rate=0.5)


def test_valid_dsn_and_lists_are_parsed():
    settings = Settings.load({"SENTRY_DSN": DSN, "OTEL_SENTRY_BIZ_TAGS": "customer, foreman"})
    assert settings.dsn == DSN
    assert settings.tag_allowlist == frozenset({"customer", "foreman"})


def test_every_variable_is_documented_with_a_fix():
    for variable in VARIABLES:
        assert variable.doc and variable.fix, variable.env
