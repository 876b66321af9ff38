"""The serving feed: the registry's routes for gateways that serve Predict in their own process.

A gateway's serving replica (docs/serving.md) scores routed requests itself and records them back
(RecordPredictions); the registry stays the one writer of what serves. Every change of a route
already goes through ``Router.invalidate`` after its transaction commits; the feed hooks in there
(``changed``): it bumps the generation in the memory-mapped file (common/serving_generation.py)
before the changing RPC answers, and queues the agent for each subscriber. A subscriber's stream
(``watch``) then reloads the queued agents' routes from the store and sends them labelled with the
generation read when it took the queue, so an update labelled G carries every change up to G.
A replica serves only while the file's generation equals its last update's: after any change
it leaves requests to Predict until the update arrives.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from trainhouse.common.predictions import route_message
from trainhouse.common.serving_generation import GenerationWriter, boot_id
from trainhouse.core.errors import NotFound
from trainhouse.registry.deployments import PRODUCTION, STAGING, Deployments
from trainhouse.registry.store import RegistryStore
from trainhouse.v1 import model_registry_pb2

GENERATION_FILE = "serving.generation"
# How often an idle stream looks whether its caller is still there.
IDLE_CHECK_S = 1.0


class _Subscriber:
    def __init__(self) -> None:
        self.agents: set[str] = set()
        self.wake = threading.Event()


class ServingFeed:
    def __init__(self, deployments: Deployments, store: RegistryStore, directory: Path):
        self.deployments = deployments
        self.store = store
        self.generations = GenerationWriter(directory / GENERATION_FILE)
        self.boot_id = boot_id()
        self._lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []
        deployments.router.on_change = self.changed

    def changed(self, agent_id: str) -> None:
        """What serves ``agent_id`` changed (committed): publish it before the caller hears back."""
        with self._lock:
            self.generations.bump()
            for sub in self._subscribers:
                sub.agents.add(agent_id)
                sub.wake.set()

    def watch(self, is_active: Callable[[], bool]) -> Iterator[model_registry_pb2.ServingUpdate]:
        """The stream of one subscriber: the whole table, then each change (module doc)."""
        sub = _Subscriber()
        with self._lock:
            self._subscribers.append(sub)
            generation = self.generations.generation
        try:
            routes = [r for agent_id, owner in self.store.agent_owners() for r in self._routes(agent_id, owner)]
            yield model_registry_pb2.ServingUpdate(
                generation=generation, snapshot=True, routes=routes, generation_file=str(self.generations.path),
                boot_id=self.boot_id, nonce=self.generations.nonce)
            while is_active():
                if not sub.wake.wait(IDLE_CHECK_S):
                    continue
                with self._lock:
                    agents, sub.agents = sorted(sub.agents), set()
                    sub.wake.clear()
                    generation = self.generations.generation
                routes = [r for agent_id in agents for r in self._routes(agent_id, self.store.agent_owner(agent_id))]
                yield model_registry_pb2.ServingUpdate(generation=generation, agent_ids=agents, routes=routes)
        finally:
            with self._lock:
                self._subscribers.remove(sub)

    def _routes(self, agent_id: str, owner: str | None) -> list[model_registry_pb2.ServingRoute]:
        out = []
        for env in (PRODUCTION, STAGING):
            try:
                route = self.deployments.load_route(agent_id, env)
            except NotFound:
                return []
            if route.stable is None and route.candidate is None:
                continue
            out.append(route_message(agent_id, owner or "", env, route))
        return out

    def close(self) -> None:
        self.generations.close()
