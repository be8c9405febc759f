"""Mood LEDs on real gpiozero devices over gpiozero's own mock pins (duty cycles read back)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import PWMLED, Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from moodcam.config import LedConfig
from moodcam.records import MoodUpdate
from moodcam.sinks.leds import LedError, LedSink

RGB = (17, 27, 22)
MOOD_PINS = {"angry": 5, "happy": 6, "sad": 13, "neutral": 19}


class CountingPin(MockPWMPin):
    """A mock PWM pin that also counts every duty-cycle write, changed or not."""

    def __init__(self, factory, info) -> None:
        super().__init__(factory, info)
        self.writes = 0

    def _set_state(self, value: float) -> None:
        self.writes += 1
        super()._set_state(value)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=CountingPin)
    yield f
    f.reset()


def states(f: MockFactory, pins: tuple[int, ...] | list[int]) -> list[float]:
    return [f.pin(p).state for p in pins]


def mood(m: str | None, t: float = 0.0) -> MoodUpdate:
    return MoodUpdate(t=t, mood=m, changed=True)


def test_rgb_colour_per_mood_scaled_by_brightness(factory: MockFactory) -> None:
    cfg = LedConfig(enabled=True, mode="rgb", brightness=0.5)
    sink = LedSink(cfg, pin_factory=factory)
    assert states(factory, RGB) == [0, 0, 0]  # no mood yet: the "none" colour, black
    sink.handle(mood("happy"))  # #ffb000
    assert states(factory, RGB) == pytest.approx([0.5, 0.5 * 0xB0 / 255, 0])
    sink.handle(mood("sad"))  # #0040ff
    assert states(factory, RGB) == pytest.approx([0, 0.5 * 0x40 / 255, 0.5])
    sink.handle(mood("neutral"))  # #ffffff
    assert states(factory, RGB) == pytest.approx([0.5, 0.5, 0.5])
    sink.handle(mood(None))
    assert states(factory, RGB) == [0, 0, 0]
    sink.close()

    cfg = LedConfig(
        enabled=True, mode="rgb", brightness=1.0, colors={"angry": "#ff0000", "none": "#101010"}
    )
    sink = LedSink(cfg, pin_factory=factory)
    assert states(factory, RGB) == pytest.approx([0x10 / 255] * 3)  # a dim glow for "no mood"
    sink.handle(mood("angry"))
    assert states(factory, RGB) == pytest.approx([1, 0, 0])
    sink.handle(mood("happy"))  # no colour configured: falls back to "none"
    assert states(factory, RGB) == pytest.approx([0x10 / 255] * 3)
    sink.close()


def test_rgb_common_anode_inverts(factory: MockFactory) -> None:
    cfg = LedConfig(enabled=True, mode="rgb", common_anode=True, brightness=0.5)
    sink = LedSink(cfg, pin_factory=factory)
    assert states(factory, RGB) == [1, 1, 1]  # high = off when the LED's anode is on 3V3
    sink.handle(mood("angry"))  # #ff0000
    assert states(factory, RGB) == pytest.approx([0.5, 1, 1])
    sink.handle(mood("happy"))
    assert states(factory, RGB) == pytest.approx([0.5, 1 - 0.5 * 0xB0 / 255, 1])
    sink.close()
    for p in RGB:
        pin = factory.pin(p)
        # switched off (driven high) before gpiozero released the pin back to an input
        assert pin.states[-2].state == 1 and pin.function == "input"


def test_leds_change_only_when_the_mood_changes(factory: MockFactory) -> None:
    sink = LedSink(LedConfig(enabled=True, mode="rgb"), pin_factory=factory)
    sink.handle(mood("happy"))
    writes = [factory.pin(p).writes for p in RGB]
    for i in range(50):  # frames with the same mood, `changed` or not
        sink.handle(MoodUpdate(t=i / 10, mood="happy", changed=i == 0))
    assert [factory.pin(p).writes for p in RGB] == writes
    sink.handle(mood("sad"))
    assert all(factory.pin(p).writes > w for p, w in zip(RGB, writes, strict=True))
    assert sink.mood == "sad"
    assert sink.stats() == {"changes": 2}  # happy, sad: the 50 repeats are not changes
    sink.close()


def test_per_mood_leds(factory: MockFactory) -> None:
    pins = list(MOOD_PINS.values())
    cfg = LedConfig(enabled=True, mode="per_mood", brightness=0.7)
    sink = LedSink(cfg, pin_factory=factory)
    assert states(factory, pins) == [0, 0, 0, 0]
    sink.handle(mood("happy"))
    assert states(factory, pins) == pytest.approx([0, 0.7, 0, 0])
    sink.handle(mood("sad"))
    assert states(factory, pins) == pytest.approx([0, 0, 0.7, 0])
    writes = [factory.pin(p).writes for p in pins]
    sink.handle(MoodUpdate(t=1.0, mood="sad"))
    assert [factory.pin(p).writes for p in pins] == writes
    sink.handle(mood("surprise"))  # a mood without a pin: all off
    assert states(factory, pins) == [0, 0, 0, 0]
    sink.handle(mood("angry"))
    assert states(factory, pins) == pytest.approx([0.7, 0, 0, 0])
    sink.handle(mood(None))
    assert states(factory, pins) == [0, 0, 0, 0]
    sink.handle(mood("neutral"))
    sink.close()
    assert states(factory, pins) == [0, 0, 0, 0]
    assert all(factory.pin(p).function == "input" for p in pins)
    assert factory.pin(19).states[-1].state == 0  # neutral was lit, then switched off


def test_per_mood_common_anode(factory: MockFactory) -> None:
    pins = list(MOOD_PINS.values())
    sink = LedSink(
        LedConfig(mode="per_mood", common_anode=True, brightness=1.0), pin_factory=factory
    )
    assert states(factory, pins) == [1, 1, 1, 1]
    sink.handle(mood("angry"))
    assert states(factory, pins) == [0, 1, 1, 1]
    sink.close()
    assert all(factory.pin(p).states[-2].state == 1 for p in pins)  # off before release


def test_close_releases_pins_and_is_idempotent(factory: MockFactory) -> None:
    sink = LedSink(LedConfig(mode="rgb", brightness=1.0), pin_factory=factory)
    sink.handle(mood("neutral"))
    assert states(factory, RGB) == [1, 1, 1]
    sink.close()
    sink.close()
    sink.handle(mood("angry"))  # after close: ignored, not an error
    assert states(factory, RGB) == [0, 0, 0]
    for p in RGB:  # free for anyone else now
        PWMLED(p, pin_factory=factory).close()


def test_pin_configured_twice_is_named(factory: MockFactory) -> None:
    cfg = LedConfig(mode="per_mood", mood_pins={"angry": 5, "happy": 6, "sad": 5})
    with pytest.raises(LedError, match=r"GPIO5 is configured twice \(angry and sad\)"):
        LedSink(cfg, pin_factory=factory)
    cfg = LedConfig(mode="rgb", rgb_pins=[17, 27, 17])
    with pytest.raises(LedError, match=r"GPIO17 is configured twice \(red and blue\)"):
        LedSink(cfg, pin_factory=factory)


def test_pin_in_use_elsewhere_is_named_and_nothing_is_left_claimed(factory: MockFactory) -> None:
    other = PWMLED(13, pin_factory=factory)  # another device already owns the "sad" pin
    with pytest.raises(LedError) as e:
        LedSink(LedConfig(mode="per_mood"), pin_factory=factory)
    msg = str(e.value)
    assert "GPIO13" in msg and "in use" in msg and "\n" not in msg
    for p in (5, 6):  # the pins claimed before the failure were given back
        PWMLED(p, pin_factory=factory).close()

    other2 = PWMLED(27, pin_factory=factory)
    with pytest.raises(LedError, match=r"GPIO27.*in use"):
        LedSink(LedConfig(mode="rgb"), pin_factory=factory)
    for p in (17, 22):
        PWMLED(p, pin_factory=factory).close()
    other.close()
    other2.close()


def test_no_pin_factory_off_the_pi(monkeypatch: pytest.MonkeyPatch) -> None:
    model = Path("/proc/device-tree/model")
    if model.exists() and "Raspberry Pi" in model.read_text(errors="replace"):
        pytest.skip("on a real Pi the default pin factory works (and would drive real pins)")
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)  # in case another test installed a mock
    with pytest.raises(LedError) as e:
        LedSink(LedConfig(mode="rgb"))  # pin_factory=None: gpiozero's default
    msg = str(e.value)
    assert "GPIO17, GPIO27, GPIO22" in msg and "no GPIO pin factory" in msg and "\n" not in msg
