"""What a self-calibrating detector prints about its threshold names the rule and its parameters."""

from kdgat.deploy.calibrate import rule_text


def test_each_rule_is_described_with_its_parameters() -> None:
    quantile = {"rule": "quantile", "quantile": 0.95, "margin": 3.0, "scale": "log_odds"}
    assert rule_text(quantile) == (
        "quantile 0.95 of the calibration windows' scores + 3 robust SDs of them on the log-odds scale"
    )
    highest = {"rule": "max", "margin": 0.5, "scale": "log"}
    assert (
        rule_text(highest)
        == "the highest of the calibration windows' scores + 0.5 robust SDs of them on the log scale"
    )
    assert rule_text({"rule": "keep"}) == "the run's own, kept"
