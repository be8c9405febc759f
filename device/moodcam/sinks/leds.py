"""Mood LEDs through gpiozero: an RGB LED showing a colour per mood, or one LED per mood.

`pin_factory` is gpiozero's: None picks the Pi's default (lgpio, RPi.GPIO, ...); tests pass
`MockFactory(pin_class=MockPWMPin)`. `common_anode` means the LEDs are wired to 3V3 and the pin
sinks the current (active low); it applies to both modes.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

from moodcam.config import Config, LedConfig
from moodcam.errors import SinkError
from moodcam.records import MoodUpdate
from moodcam.sinks import Sink

log = logging.getLogger("moodcam.leds")

NONE = "none"  # the colour key shown while there is no mood


class LedError(SinkError):
    """The LEDs cannot be used; the one-line message names the pin(s) and the reason."""


def hex_to_rgb(color: str) -> tuple[float, float, float]:
    """'#ffb000' -> (1.0, 0.69, 0.0)."""
    c = color.lstrip("#")
    return (int(c[0:2], 16) / 255, int(c[2:4], 16) / 255, int(c[4:6], 16) / 255)


def _pin_names(pins: list[int]) -> str:
    return ", ".join(f"GPIO{p}" for p in pins)


class LedSink(Sink):
    """Sink driving LEDs from the mood; LEDs change only when the mood does."""

    def __init__(self, cfg: LedConfig, pin_factory: Any = None) -> None:
        self.cfg = cfg
        self._active_high = not cfg.common_anode
        self._rgb: Any = None  # gpiozero.RGBLED in "rgb" mode
        self._leds: dict[str, Any] = {}  # mood -> gpiozero.PWMLED in "per_mood" mode
        self._warned: set[str] = set()
        self._closed = False
        if cfg.mode == "rgb":
            named = dict(zip(("red", "green", "blue"), cfg.rgb_pins, strict=True))
        else:
            named = dict(cfg.mood_pins)
        _check_unique(named)
        if cfg.mode == "rgb":
            from gpiozero import RGBLED  # imported here: the daemon runs without LEDs too

            self._rgb = _make(
                list(named.values()),
                lambda: RGBLED(
                    *cfg.rgb_pins,
                    active_high=self._active_high,
                    pwm=True,
                    initial_value=(0, 0, 0),
                    pin_factory=pin_factory,
                ),
            )
        else:
            from gpiozero import PWMLED

            try:
                for mood, pin in named.items():
                    self._leds[mood] = _make(
                        [pin],
                        lambda pin=pin: PWMLED(
                            pin,
                            active_high=self._active_high,
                            initial_value=0,
                            pin_factory=pin_factory,
                        ),
                    )
            except LedError:
                self._close_devices()  # release the pins already claimed
                raise
        self._mood: str | None = None
        self.changes = 0  # times the LEDs changed what they show
        self._show(None)

    @classmethod
    def from_config(cls, cfg: Config, labels: tuple[str, ...]) -> LedSink:
        try:
            return cls(cfg.leds)
        except LedError as e:
            raise SinkError(f"{cfg.path}: [leds] {e}") from None

    def stats(self) -> dict[str, Any]:
        return {"changes": self.changes}

    def handle(self, update: MoodUpdate) -> None:
        # Compare with what is shown rather than trusting `changed`: PWM writes are cheap but
        # needless ones can glitch software PWM, and a missed `changed` would stick forever.
        if not self._closed and update.mood != self._mood:
            self._show(update.mood)
            self.changes += 1

    def close(self) -> None:
        """All LEDs off, devices closed and pins released; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._rgb is not None:
                self._rgb.off()
            for led in self._leds.values():
                led.off()
        except Exception as e:  # closing must not take the daemon's shutdown down with it
            log.warning("LEDs: could not switch off: %s", e)
        self._close_devices()

    @property
    def mood(self) -> str | None:
        """The mood the LEDs show now."""
        return self._mood

    def _show(self, mood: str | None) -> None:
        b = self.cfg.brightness
        if self._rgb is not None:
            r, g, bl = hex_to_rgb(self._color(mood))
            self._rgb.color = (r * b, g * b, bl * b)
        else:
            for m, led in self._leds.items():
                led.value = b if m == mood else 0
            if mood is not None and mood not in self._leds and mood not in self._warned:
                self._warned.add(mood)
                log.warning("LEDs: no pin for mood %r in [leds] mood_pins; all LEDs off", mood)
        self._mood = mood

    def _color(self, mood: str | None) -> str:
        key = NONE if mood is None else mood
        if key in self.cfg.colors:
            return self.cfg.colors[key]
        if key not in self._warned:
            self._warned.add(key)
            log.warning("LEDs: no colour for mood %r in [leds] colors; showing 'none'", key)
        return self.cfg.colors.get(NONE, "#000000")

    def _close_devices(self) -> None:
        for dev in [self._rgb, *self._leds.values()]:
            if dev is not None:
                try:
                    dev.close()
                except Exception as e:
                    log.warning("LEDs: closing %r failed: %s", dev, e)
        self._rgb = None
        self._leds = {}


def _check_unique(named: dict[str, int]) -> None:
    """One pin for two legs/moods would fight over it; say which, before gpiozero gets vaguer."""
    seen: dict[int, str] = {}
    for name, pin in named.items():
        if pin in seen:
            raise LedError(
                f"LEDs: GPIO{pin} is configured twice ({seen[pin]} and {name}); "
                f"each LED needs its own pin"
            )
        seen[pin] = name


def _make(pins: list[int], build: Callable[[], Any]) -> Any:
    """Build a gpiozero device, turning its many failure types into one clear LedError."""
    from gpiozero import BadPinFactory, GPIOPinInUse, PinFactoryFallback

    with warnings.catch_warnings(record=True) as caught:
        # gpiozero warns once per pin library it fails to load; keep those for the message.
        warnings.simplefilter("always", PinFactoryFallback)
        try:
            return build()
        except BadPinFactory as e:
            tried = "; ".join(
                str(w.message).removeprefix("Falling back from ")
                for w in caught
                if issubclass(w.category, PinFactoryFallback)
            )
            raise LedError(
                f"LEDs on {_pin_names(pins)}: no GPIO pin factory (not a Raspberry Pi, "
                f"or lgpio/RPi.GPIO not installed): {e}" + (f" [{tried}]" if tried else "")
            ) from None
        except GPIOPinInUse as e:
            raise LedError(f"LEDs on {_pin_names(pins)}: pin already in use: {e}") from None
        except Exception as e:  # lgpio 'GPIO busy', invalid pin numbers, permissions, ...
            msg = " ".join(str(e).split()) or type(e).__name__
            raise LedError(f"LEDs on {_pin_names(pins)}: {msg}") from None
