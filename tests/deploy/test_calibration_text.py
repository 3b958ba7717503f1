"""What a self-calibrating detector prints: the rule of its threshold, and the IDs it never heard."""

from kdgat.deploy.calibrate import rule_text
from kdgat.deploy.summary import Summary


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


def test_the_unknown_id_warning_names_the_ids_by_alerts_and_whose_vocabulary() -> None:
    summary = Summary(alerts=40, calibrated=True)
    others = [f"0x{0x700 + k:03X}" for k in range(9)]
    for ids in [["0x280", "0x281"]] * 12 + [["0x280"]] * 17 + [["0x280", *others]] + [[]] * 10:
        summary.count_unknown(ids)  # an alert each; those holding none are not counted
    done = summary.as_dict()
    assert done["alerts_with_unknown_ids"] == 30
    assert done["unknown_ids"] == {"0x280": 30, "0x281": 12, **dict.fromkeys(others, 1)}
    text = summary.unknown_warning()
    assert text is not None and text.startswith("30 of 40 alerts hold CAN IDs the calibration never heard")
    # The IDs by the alerts they are in, the first eight named, the rest counted.
    assert "(0x280, 0x281, 0x700, 0x701, 0x702, 0x703, 0x704, 0x705 and 3 more)" in text
    assert "calibrate again in the state being watched" in text
    flood = Summary(alerts=5)
    for _ in range(5):
        flood.count_unknown(["0x000"])
    uncalibrated = flood.unknown_warning()
    assert uncalibrated is not None and "never saw in training (0x000)" in uncalibrated
    assert "--calibrate-seconds" in uncalibrated
    assert Summary(alerts=5).unknown_warning() is None
