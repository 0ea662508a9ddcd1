"""Round trips, end-to-end latency (pairs interleaved) and CPU per call on a playback of recorded answers."""

from __future__ import annotations

import gc
import itertools
import random
import statistics
import time
import uuid
from typing import Any

from contenders import BUILDERS, OURS, SCENARIOS, THEIRS, Handler, LambdaContext, Scenario, event, undecorated

CONTEXT = LambdaContext()


class KeySource:
    """Keys for one scenario: fresh ones, or one key completed once up front (so every call is a duplicate)."""

    def __init__(self, scenario: Scenario, handlers: dict[str, Handler]) -> None:
        self._fresh = scenario.fresh_key
        self._run = uuid.uuid4().hex[:8]
        self._counter = itertools.count()
        if not self._fresh:
            self._fixed = f"dup-{self._run}"
            for handler in handlers.values():
                handler(event(self._fixed), CONTEXT)
                handler(event(self._fixed), CONTEXT)  # a second call warms a local cache where there is one

    def next(self) -> str:
        return f"order-{self._run}-{next(self._counter)}" if self._fresh else self._fixed


def handlers_for(client: Any, tables: dict[str, str], scenario: Scenario) -> dict[str, Handler]:
    return {name: build(client, tables[name], scenario) for name, build in BUILDERS.items()}


def round_trips(client: Any, tables: dict[str, str]) -> dict[str, dict[str, int]]:
    """DynamoDB API calls of one call per scenario and library, counted on the client (botocore ``before-call``)."""
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb", count)
    try:
        found: dict[str, dict[str, int]] = {}
        for scenario in SCENARIOS:
            handlers = handlers_for(client, tables, scenario)
            keys = KeySource(scenario, handlers)
            found[scenario.name] = {}
            for name, handler in handlers.items():
                calls.clear()
                handler(event(keys.next()), CONTEXT)
                found[scenario.name][name] = len(calls)
        return found
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)


def latency(
    client: Any, tables: dict[str, str], calls: int, seed: int, collections: dict[str, Any] | None = None
) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per call; each pair (ours, theirs) runs back to back in random order, so drift cancels.

    ``collections``, when given, gets the garbage collections that ran inside each library's calls (`GcWatch`).
    """
    rng = random.Random(seed)
    samples: dict[str, dict[str, list[float]]] = {}
    for scenario in SCENARIOS:
        handlers = handlers_for(client, tables, scenario)
        keys = KeySource(scenario, handlers)
        samples[scenario.name] = {OURS: [], THEIRS: []}
        order = [OURS, THEIRS]
        with GcWatch() as watch:
            for _ in range(calls):
                rng.shuffle(order)
                for name in order:
                    payload = event(keys.next())
                    watch.running = name
                    started = time.perf_counter()
                    handlers[name](payload, CONTEXT)
                    samples[scenario.name][name].append((time.perf_counter() - started) * 1000)
                    watch.running = None
        if collections is not None:
            found = collections.setdefault(scenario.name, {name: {"collections": 0, "ms": 0.0, "calls": 0}
                                                          for name in (OURS, THEIRS)})  # fmt: skip
            for name in (OURS, THEIRS):
                found[name]["collections"] += watch.collections[name]
                found[name]["ms"] += watch.ms[name]
                found[name]["calls"] += calls
    samples[CONTROL] = control(client, tables, calls, rng)
    return samples


CONTROL = "control: Powertools against itself, first execution"
"""The noise floor of a latency ratio: the same library on both sides, so every difference is the machine's."""


def control(client: Any, tables: dict[str, str], calls: int, rng: random.Random) -> dict[str, list[float]]:
    """Two identical Powertools handlers in interleaved pairs, filed as the two sides of a ratio."""
    build = BUILDERS[THEIRS]
    handlers = {OURS: build(client, tables[THEIRS], SCENARIOS[0]), THEIRS: build(client, tables[THEIRS], SCENARIOS[0])}
    keys = KeySource(SCENARIOS[0], handlers)
    found: dict[str, list[float]] = {OURS: [], THEIRS: []}
    order = [OURS, THEIRS]
    for _ in range(calls):
        rng.shuffle(order)
        for side in order:
            payload = event(keys.next())
            started = time.perf_counter()
            handlers[side](payload, CONTEXT)
            found[side].append((time.perf_counter() - started) * 1000)
    return found


class GcWatch:
    """Counts the garbage collections (and their milliseconds) that run while each library's call runs."""

    def __init__(self) -> None:
        self.running: str | None = None
        self.collections = {OURS: 0, THEIRS: 0}
        self.ms = {OURS: 0.0, THEIRS: 0.0}
        self._started = 0.0

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.running is not None:
            self.collections[self.running] += 1
            self.ms[self.running] += (time.perf_counter() - self._started) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


CPU_CASES = [
    Scenario(f"{call}, {keying}", fresh_key=call == "first execution", local_cache=False, fingerprint=fingerprint)
    for keying, fingerprint in (("plain key", False), ("key + fingerprint", True))
    for call in ("first execution", "duplicate")
]
"""What the CPU target covers: first executions and duplicates, with a plain key and with the body fingerprinted."""


def record_answers(client: Any, tables: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each library's real answers to one call of each CPU case, and the event that call got (played back as is)."""
    from playback import Recorder

    found: dict[str, dict[str, Any]] = {}
    for number, scenario in enumerate(CPU_CASES):
        found[scenario.name] = {}
        for name, build in BUILDERS.items():
            recorder = Recorder(client)
            handler = build(recorder, tables[name], scenario)
            payload = event(f"cpu-{number}-{uuid.uuid4().hex[:8]}")
            if not scenario.fresh_key:
                handler(payload, CONTEXT)  # completes the key: the recorded call is a duplicate
                recorder.answers.clear()
            handler(payload, CONTEXT)
            found[scenario.name][name] = {"event": payload, "answers": recorder.answers}
    return found


HANDLER = "handler alone"


def playback_handlers(scenario: Scenario, recorded: dict[str, Any]) -> dict[str, Handler]:
    """Each library's handler on a playback of its own answers, and the undecorated handler."""
    from playback import Playback

    handlers = {
        name: build(Playback(recorded[name]["answers"]), "playback", scenario) for name, build in BUILDERS.items()
    }
    handlers[HANDLER] = undecorated(None, "playback", scenario)
    return handlers


def cpu_per_call(
    recorded: dict[str, dict[str, Any]], calls: int, repeats: int, block: int = 50, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Microseconds of CPU each library adds to a call, on a playback of its own recorded answers.

    A run times ``calls`` calls of each library (and of the undecorated handler, whose CPU is subtracted from
    both) in blocks of ``block`` calls, the libraries' blocks interleaved in random order, so a neighbour's load
    falls on all of them alike. The ratio is taken per run; its median and spread are over ``repeats`` runs.
    """
    rng = random.Random(seed)
    found: dict[str, dict[str, Any]] = {}
    for scenario in CPU_CASES:
        handlers = playback_handlers(scenario, recorded[scenario.name])
        events = {
            name: _events(scenario, recorded[scenario.name].get(name, {}).get("event"), calls) for name in handlers
        }
        for name, handler in handlers.items():  # warm-up: first-use compilation, caches
            for payload in events[name][:block]:
                handler(payload, CONTEXT)
        runs: dict[str, list[float]] = {name: [] for name in handlers}
        names = list(handlers)
        for _ in range(repeats):
            spent = dict.fromkeys(names, 0.0)
            for start in range(0, calls, block):
                rng.shuffle(names)
                for name in names:
                    handler, payloads = handlers[name], events[name][start : start + block]
                    started = time.process_time()
                    for payload in payloads:
                        handler(payload, CONTEXT)
                    spent[name] += time.process_time() - started
            for name in names:
                runs[name].append(spent[name] / calls * 1e6)
        alone = runs.pop(HANDLER)
        added = {name: [v - a for v, a in zip(values, alone, strict=True)] for name, values in runs.items()}
        ratios = [o / t for o, t in zip(added[OURS], added[THEIRS], strict=True)]
        found[scenario.name] = {
            **{name: statistics.median(values) for name, values in added.items()},
            HANDLER: statistics.median(alone),
            "runs": added,
            "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
        }
    return found


def _events(scenario: Scenario, recorded: dict[str, Any] | None, calls: int) -> list[dict[str, Any]]:
    """The recorded event again and again (a duplicate), or fresh keys (first executions: the answers fit any)."""
    if not scenario.fresh_key and recorded is not None:
        return [recorded] * calls
    run = uuid.uuid4().hex[:8]
    return [event(f"cpu-{run}-{i}") for i in range(calls)]
