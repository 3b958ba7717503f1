"""DAPT2020's CICFlowMeter CSVs (Myneni et al., MLHat 2020): the CIC-IDS2017 "improved" columns
minus id, the RST and ICMP columns and Total TCP Flow Time, with two label columns `Activity`
(the attack step) and `Stage` (the APT stage) in place of `Label, Attempted Category`.

- Timestamps are `dd/mm/yyyy hh:mm:ss AM|PM` (1-second resolution, capture local time).
- One released file (enp0s3-pvt-thursday) has no header row: a first row that is a flow of this
  layout (85 fields, a timestamp in field 7) is read with HEADER; anything else is refused.
- Attack = Stage (stripped, case-folded) is not `benign`; one file spells the benign class
  `BENIGN` in both columns, the others `Normal` / `Benign`. A row whose Activity and Stage
  disagree on benign vs attack is refused, as is any step or stage outside the vocabulary.
- Rows are not in time order: the reader sorts them (stably) like every other flow reader.
"""

from pathlib import Path

import numpy as np

from kdgat.data.internet.cicflowmeter import Variant, read_cicflowmeter
from kdgat.data.internet.flows import BENIGN, Flows
from kdgat.data.text.scan import gather

HEADER: tuple[str, ...] = (
    *("Flow ID", "Src IP", "Src Port", "Dst IP", "Dst Port", "Protocol", "Timestamp"),
    *("Flow Duration", "Total Fwd Packet", "Total Bwd packets", "Total Length of Fwd Packet"),
    *("Total Length of Bwd Packet", "Fwd Packet Length Max", "Fwd Packet Length Min"),
    *("Fwd Packet Length Mean", "Fwd Packet Length Std", "Bwd Packet Length Max"),
    *("Bwd Packet Length Min", "Bwd Packet Length Mean", "Bwd Packet Length Std"),
    *("Flow Bytes/s", "Flow Packets/s", "Flow IAT Mean", "Flow IAT Std", "Flow IAT Max"),
    *("Flow IAT Min", "Fwd IAT Total", "Fwd IAT Mean", "Fwd IAT Std", "Fwd IAT Max", "Fwd IAT Min"),
    *("Bwd IAT Total", "Bwd IAT Mean", "Bwd IAT Std", "Bwd IAT Max", "Bwd IAT Min"),
    *("Fwd PSH Flags", "Bwd PSH Flags", "Fwd URG Flags", "Bwd URG Flags", "Fwd Header Length"),
    *("Bwd Header Length", "Fwd Packets/s", "Bwd Packets/s", "Packet Length Min"),
    *("Packet Length Max", "Packet Length Mean", "Packet Length Std", "Packet Length Variance"),
    *("FIN Flag Count", "SYN Flag Count", "RST Flag Count", "PSH Flag Count", "ACK Flag Count"),
    *("URG Flag Count", "CWR Flag Count", "ECE Flag Count", "Down/Up Ratio", "Average Packet Size"),
    *("Fwd Segment Size Avg", "Bwd Segment Size Avg", "Fwd Bytes/Bulk Avg", "Fwd Packet/Bulk Avg"),
    *("Fwd Bulk Rate Avg", "Bwd Bytes/Bulk Avg", "Bwd Packet/Bulk Avg", "Bwd Bulk Rate Avg"),
    *("Subflow Fwd Packets", "Subflow Fwd Bytes", "Subflow Bwd Packets", "Subflow Bwd Bytes"),
    *("FWD Init Win Bytes", "Bwd Init Win Bytes", "Fwd Act Data Pkts", "Fwd Seg Size Min"),
    *("Active Mean", "Active Std", "Active Max", "Active Min"),
    *("Idle Mean", "Idle Std", "Idle Max", "Idle Min", "Activity", "Stage"),
)
STAGES = ("benign", "reconnaissance", "establish foothold", "lateral movement", "data exfiltration")
BENIGN_STEPS = ("normal", "benign")
# The attack steps of the release (the public-side files, not all stored here, add the rest).
STEPS = (
    *("Network Scan", "Web Vulnerability Scan", "Directory Bruteforce", "Account Bruteforce"),
    *("Account Discovery", "SQL Injection", "CSRF", "Privilege Escalation", "Command Injection"),
    *("Malware Download", "Backdoor", "Data Exfiltration"),
)
_STEP = {step.casefold(): step for step in STEPS}


def attack_type(texts: tuple[str, ...]) -> str | None:
    """(Activity, Stage) -> BENIGN, the attack step, or None when refused.

    The attack type is the Activity, not the Stage: it names what the flow does (a scan, an SQL
    injection), which is what a detector sees, while the Stage is where the campaign stood; and
    in enp0s3-tcpdump-friday the 9 Network Scan flows carry Stage = Data Exfiltration."""
    activity, stage = (t.strip().casefold() for t in texts)
    if stage not in STAGES:
        return None
    if stage == "benign":
        return BENIGN if activity in BENIGN_STEPS else None
    return _STEP.get(activity)


def _dmy_timestamps(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`dd/mm/yyyy hh:mm:ss AM|PM` -> (POSIX seconds as written, ok)."""
    width = 22
    mat, _ = gather(buf, start, np.minimum(end, start + width), width)
    ok = ((end - start) == width) & (mat[:, 21] == ord("M"))
    for j, c in ((2, "/"), (5, "/"), (10, " "), (13, ":"), (16, ":"), (19, " ")):
        ok &= mat[:, j] == ord(c)
    digits = [0, 1, 3, 4, 6, 7, 8, 9, 11, 12, 14, 15, 17, 18]
    ok &= ((mat[:, digits] >= ord("0")) & (mat[:, digits] <= ord("9"))).all(axis=1)
    pm = mat[:, 20] == ord("P")
    ok &= pm | (mat[:, 20] == ord("A"))
    value = mat.astype(np.int64) - ord("0")

    def number(*at: int) -> np.ndarray:
        result = np.zeros(len(start), dtype=np.int64)
        for j in at:
            result = result * 10 + value[:, j]
        return result

    day, month, year = number(0, 1), number(3, 4), number(6, 7, 8, 9)
    hour, minute, second = number(11, 12), number(14, 15), number(17, 18)
    ok &= (hour >= 1) & (hour <= 12) & (minute < 60) & (second < 60)
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (year >= 1970)
    first = (np.where(ok, year, 1970) - 1970) * 12 + np.where(ok, month, 1) - 1
    month_start = np.array(first, dtype="datetime64[M]").astype("datetime64[D]")
    date = month_start + np.where(ok, day, 1) - 1
    ok &= date.astype("datetime64[M]") == month_start  # no 31 June: the day stays in its month
    hours = hour % 12 + np.where(pm, 12, 0)  # 12 AM is midnight, 12 PM noon
    seconds = date.astype(np.int64) * 86400 + hours * 3600 + minute * 60 + second
    return np.where(ok, seconds, 0).astype(np.float64), ok


DAPT2020 = Variant(
    name="DAPT2020",
    labels=("Activity", "Stage"),
    attack=attack_type,
    vocabulary=(
        "Activity Normal/BENIGN with Stage Benign, or an attack step ("
        + ", ".join(STEPS[:4])
        + ", ...) with an APT stage ("
        + ", ".join(s.title() for s in STAGES[1:])
        + ")"
    ),
    timestamps=_dmy_timestamps,
    timestamp_form="dd/mm/yyyy hh:mm:ss AM|PM",
    header=HEADER,
)


def read_dapt2020(path: Path, malformed: str = "error") -> Flows:
    """One DAPT2020 CSV (with or without its header row), sorted by flow start."""
    return read_cicflowmeter(path, malformed, DAPT2020)
