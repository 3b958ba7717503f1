"""The BATADAL scorer against hand-worked cases."""

import numpy as np
import pytest

from kdgat.evaluation.batadal import batadal_score, trailing_mean
from tests.helpers import shared_data

# 12 hours: attack 1 = hours 2-5 (4 h), attack 2 = hours 8-9 (2 h)
LABEL = np.array([0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0])
IDS = np.array([0, 0, 1, 1, 1, 1, 0, 0, 2, 2, 0, 0])


def test_flag_every_hour() -> None:
    s = batadal_score(LABEL, np.ones(12, dtype=bool), IDS)
    assert (s["S_TTD"], s["S_CM"], s["S"]) == (1.0, 0.5, 0.75)
    assert (s["TPR"], s["TNR"], s["attacks"], s["attacks_detected"]) == (1.0, 0.0, 2, 2)
    assert [a["delay_hours"] for a in s["per_attack"]] == [0, 0]


def test_flag_nothing() -> None:
    s = batadal_score(LABEL, np.zeros(12, dtype=int), IDS)
    assert (s["S_TTD"], s["S_CM"], s["S"]) == (0.0, 0.5, 0.25)
    assert s["attacks_detected"] == 0 and [a["delay_hours"] for a in s["per_attack"]] == [None, None]


def test_detection_two_hours_into_a_four_hour_attack() -> None:
    label = np.array([0, 0, 1, 1, 1, 1, 0, 0])
    ids = label.copy()
    decision = np.array([0, 0, 0, 0, 1, 1, 0, 0])
    s = batadal_score(label, decision, ids)
    # TTD = 2 of dt = 4 -> S_TTD = 0.5; TPR = 2/4, TNR = 4/4 -> S_CM = 0.75; S = 0.625
    assert s["S_TTD"] == 0.5 and s["TPR"] == 0.5 and s["TNR"] == 1.0 and s["S_CM"] == 0.75
    assert s["S"] == 0.625
    assert s["per_attack"] == [{"attack_id": 1, "start": 2, "length": 4, "detected": True, "delay_hours": 2}]
    span = batadal_score(label, decision, ids, duration="span")  # dt = 3
    assert span["S_TTD"] == pytest.approx(1 - 2 / 3)


def test_two_attacks_one_missed_with_false_alarms() -> None:
    decision = np.array([1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0])  # attack 1 from hour 3, attack 2 missed
    s = batadal_score(LABEL, decision, IDS, gamma=0.5)
    # ratios: attack 1 TTD 1 / 4, attack 2 missed 2 / 2 -> S_TTD = 1 - (0.25 + 1) / 2 = 0.375
    # TPR = 2 / 6; benign hours 6, flagged 2 (hours 0 and 7) -> TNR = 4 / 6
    assert s["S_TTD"] == pytest.approx(0.375)
    assert s["TPR"] == pytest.approx(1 / 3) and s["TNR"] == pytest.approx(2 / 3)
    assert s["S_CM"] == pytest.approx(0.5) and s["S"] == pytest.approx(0.4375)
    assert s["attacks"] == 2 and s["attacks_detected"] == 1
    assert [(a["attack_id"], a["start"], a["length"], a["detected"]) for a in s["per_attack"]] == [
        (1, 2, 4, True),
        (2, 8, 2, False),
    ]
    assert batadal_score(LABEL, decision, IDS, gamma=1.0)["S"] == pytest.approx(0.375)
    assert batadal_score(LABEL, decision, IDS, gamma=0.0)["S"] == pytest.approx(0.5)


def test_alarm_before_an_attack_does_not_count_as_detection() -> None:
    label = np.array([0, 1, 1, 0])
    s = batadal_score(label, np.array([1, 0, 0, 0]), label)
    assert s["S_TTD"] == 0.0 and s["attacks_detected"] == 0 and s["TNR"] == 0.5


def test_attacks_are_reported_in_time_order_whatever_their_ids() -> None:
    label = np.array([1, 1, 0, 1, 0])
    ids = np.array([9, 9, 0, 3, 0])
    s = batadal_score(label, np.array([0, 1, 0, 1, 0]), ids)
    assert [a["attack_id"] for a in s["per_attack"]] == [9, 3]
    assert [a["delay_hours"] for a in s["per_attack"]] == [1, 0]
    assert s["S_TTD"] == pytest.approx(1 - (0.5 + 0.0) / 2)


def test_unlabelled_hours_are_left_out_of_s_cm() -> None:
    label = np.array([0, -1, 1, -1])
    s = batadal_score(label, np.array([0, 1, 1, 1]), np.array([0, 0, 1, 0]))
    assert s["TNR"] == 1.0 and s["TPR"] == 1.0 and s["S"] == 1.0


def test_same_id_twice_is_refused() -> None:
    label = np.array([1, 0, 1])
    with pytest.raises(ValueError, match=r"attack 4 is not one contiguous run.*hour 0 and again at hour 2"):
        batadal_score(label, label, np.array([4, 0, 4]))


def test_inconsistent_input_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly on the hours labelled 1"):
        batadal_score(np.array([1, 0]), np.array([1, 0]), np.array([0, 0]))
    with pytest.raises(ValueError, match="one length"):
        batadal_score(np.array([1, 0]), np.array([1]), np.array([1, 0]))
    with pytest.raises(ValueError, match="decision must be 0/1"):
        batadal_score(np.array([1, 0]), np.array([0.7, 0]), np.array([1, 0]))
    with pytest.raises(ValueError, match="gamma"):
        batadal_score(LABEL, LABEL, IDS, gamma=2.0)


@pytest.mark.real_data
def test_official_test_set_reference_points() -> None:
    """On the real test labels: the trivial detectors, and a perfect one."""
    from kdgat.data.watertreatment.batadal import read_batadal

    root = shared_data("watertreatment_batadal")
    log = read_batadal(
        root / "BATADAL_test_dataset_labelled.csv.gz",
        attack_ids=root / "BATADAL_test_dataset_attack_ids.csv.gz",
    )
    every = batadal_score(log.label, np.ones(len(log), dtype=bool), log.attack_id)
    assert every["S"] == 0.75 and every["attacks"] == 7
    assert [a["attack_id"] for a in every["per_attack"]] == list(range(8, 15))
    assert [a["length"] for a in every["per_attack"]] == [70, 65, 31, 31, 100, 80, 30]
    perfect = batadal_score(log.label, log.label == 1, log.attack_id)
    assert perfect["S"] == 1.0 and perfect["attacks_detected"] == 7
    late = np.zeros(len(log), dtype=bool)  # detect each attack at its 10th hour, nothing else
    for a in perfect["per_attack"]:
        late[a["start"] + 9] = True
    s = batadal_score(log.label, late, log.attack_id)
    lengths = np.array([70, 65, 31, 31, 100, 80, 30])
    assert s["S_TTD"] == pytest.approx(1 - np.mean(9 / lengths))
    assert s["TPR"] == pytest.approx(7 / 407) and s["TNR"] == 1.0


def test_trailing_mean_averages_each_logs_own_past_hours_only() -> None:
    # Two logs interleaved, out of order; log "b" lacks hour 2 (unlabelled, no window).
    source = ["a", "b", "a", "a", "b", "b", "a"]
    hour = np.array([0, 0, 1, 2, 1, 3, 3])
    score = np.array([1.0, 10.0, 3.0, 5.0, 20.0, 60.0, 7.0])
    got = trailing_mean(source, hour, score, 2)
    # a: hours 0..3 -> 1, (1+3)/2, (3+5)/2, (5+7)/2; b: 0, 1, 3 -> 10, (10+20)/2, 60 (hour 2 absent)
    np.testing.assert_allclose(got, [1.0, 10.0, 2.0, 4.0, 15.0, 60.0, 6.0])
    np.testing.assert_array_equal(trailing_mean(source, hour, score, 1), score)
    longer = trailing_mean(source, hour, score, 3)
    assert longer[5] == 40.0 and longer[6] == 5.0  # b: (20+60)/2, hours 1..3; a: (3+5+7)/3
