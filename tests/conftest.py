"""Shared pytest fixtures: one local ECR emulator per test session.

moto keeps its state in process-wide globals, so the emulator is a single
server for the whole session; the function-level ``emu`` fixture empties it
before every test.
"""

from __future__ import annotations

import pytest

import ecr_emulator


@pytest.fixture(scope="session")
def emulator_server():
    emu = ecr_emulator.shared()
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator_server):
    """A freshly reset emulator (no repositories, counts or faults)."""
    emulator_server.reset()
    yield emulator_server
    emulator_server.reset()
