"""`make bench` measures against the emulator with bench/emulator_speedups.py installed. The
speed-ups must answer exactly as the emulator does without them; the bench checks that
before measuring (`self_check`), and this runs the same check in `make test`, so that a
moto upgrade or an emulator change that breaks a speed-up fails here, not hours later in
a benchmark.

In its own process: the speed-ups patch moto's classes process-wide, and the tests here
share one emulator.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import sys
sys.path[:0] = {paths!r}
import ecr_emulator, emulator_speedups
emu = ecr_emulator.Emulator().start()
try:
    emulator_speedups.install(emu)
    emulator_speedups.self_check(emu)
finally:
    emu.stop()
print("speed-ups answer as the emulator does")
"""


def test_bench_speedups_answer_as_the_emulator_does():
    paths = [str(ROOT / "bench"), str(ROOT / "tests" / "emulator"), str(ROOT / "tests" / "e2e")]
    done = subprocess.run([sys.executable, "-c", CHECK.format(paths=paths)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "speed-ups answer as the emulator does"
