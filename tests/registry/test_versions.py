"""Versions over real gRPC: the semantic id rule, lineage, listing, aliases, tags, integrity."""
from __future__ import annotations

import hashlib

import grpc
import onnx

from tests.registry.conftest import THREE_INTENTS, predict, rpc_failure
from trainhouse.v1 import model_registry_pb2, model_version_pb2

VS = model_version_pb2


def test_version_ids_follow_the_catalog_rule(registry, trained):
    assert trained.versions["reg-ver"] == ["v1.0.0", "v1.1.0", "v2.0.0"]
    versions = {v.version_id: v for v in registry.ListVersions(
        model_registry_pb2.ListVersionsRequest(agent_id="reg-ver")).versions}
    assert versions["v1.0.0"].bump_reason == "first version"
    assert versions["v1.1.0"].bump_reason.startswith("minor: new training run")
    assert versions["v2.0.0"].bump_reason == "major: outputs removed since v1.1.0: account"
    assert sorted(versions["v2.0.0"].labels) == sorted(THREE_INTENTS)
    v = versions["v1.1.0"]
    assert v.job_id == trained.jobs["reg-ver"][1] and v.method == "supervised"
    assert v.state == VS.VERSION_STATE_REGISTERED and v.model_id == "reg-ver@v1.1.0"
    assert len(v.sha256) == 64 and v.size_bytes > 0 and "accuracy" in v.metrics
    assert v.training_config["epochs"] == 6


def test_register_version_is_idempotent_per_job(registry, trained, stack):
    v = registry.GetVersion(model_registry_pb2.GetVersionRequest(model_id="reg-ver@v1.0.0")).version
    artifact = next((stack.home / "registry" / "artifacts" / "reg-ver").glob(f"{v.sha256}.onnx")).read_bytes()
    again = registry.RegisterVersion(model_registry_pb2.RegisterVersionRequest(
        agent_id="reg-ver", onnx_model=artifact, job_id=v.job_id)).version
    assert again.version_id == "v1.0.0"
    assert registry.ListVersions(model_registry_pb2.ListVersionsRequest(agent_id="reg-ver",
                                                                        include_total_size=True)).total_size == 3


def test_list_pages_sorts_and_filters(registry, trained):
    req = model_registry_pb2.ListVersionsRequest
    first = registry.ListVersions(req(agent_id="reg-ver", page_size=2, order_by="version_id asc",
                                      include_total_size=True))
    assert [v.version_id for v in first.versions] == ["v1.0.0", "v1.1.0"] and first.total_size == 3
    second = registry.ListVersions(req(agent_id="reg-ver", page_size=2, order_by="version_id asc",
                                       page_token=first.next_page_token))
    assert [v.version_id for v in second.versions] == ["v2.0.0"] and not second.next_page_token
    # Page numbers: skip (page - 1) * limit, as the gateway sends it.
    page2 = registry.ListVersions(req(agent_id="reg-ver", page_size=1, skip=1, order_by="create_time asc"))
    assert [v.version_id for v in page2.versions] == ["v1.1.0"]
    newest_first = registry.ListVersions(req(agent_id="reg-ver")).versions
    assert [v.version_id for v in newest_first] == ["v2.0.0", "v1.1.0", "v1.0.0"]
    by_acc = registry.ListVersions(req(agent_id="reg-ver", order_by="metrics.validation_accuracy desc")).versions
    accs = [v.metrics["validation_accuracy"] for v in by_acc]
    assert accs == sorted(accs, reverse=True)
    bare = registry.ListVersions(req(agent_id="reg-ver", order_by="validation_accuracy asc")).versions
    assert [v.metrics["validation_accuracy"] for v in bare] == sorted(accs)
    missing = registry.ListVersions(req(agent_id="reg-ver", order_by="metrics.no_such_metric asc",
                                        include_total_size=True))
    assert missing.total_size == 3
    deployed = registry.ListVersions(req(agent_id="reg-ver", state=VS.VERSION_STATE_DEPLOYED,
                                         include_total_size=True))
    assert deployed.total_size == 1 and deployed.versions[0].version_id == "v1.0.0"  # the first version serves
    everyone = registry.ListVersions(req(page_size=100))
    assert {"reg-ver", "reg-dep", "reg-canary"} <= {v.agent_id for v in everyone.versions}
    assert rpc_failure(registry.ListVersions, req(agent_id="reg-ver", order_by="create_time sideways")).field == \
        "order_by"
    assert rpc_failure(registry.ListVersions, req(agent_id="reg-ver", page_token="%%%")).field == "page_token"
    assert rpc_failure(registry.ListVersions, req(agent_id="nobody")).code == grpc.StatusCode.NOT_FOUND


def test_aliases_and_tags(registry, trained):
    set_alias = registry.SetVersionAlias(model_registry_pb2.SetVersionAliasRequest(
        agent_id="reg-ver", version_id="v1.1.0", alias="champion", actor="tester"))
    assert list(set_alias.version.aliases) == ["champion"] and set_alias.previous_version_id == ""
    moved = registry.SetVersionAlias(model_registry_pb2.SetVersionAliasRequest(
        model_id="reg-ver@v2.0.0", alias="champion"))
    assert moved.previous_version_id == "v1.1.0"
    assert registry.GetVersion(model_registry_pb2.GetVersionRequest(
        agent_id="reg-ver", version_id="champion")).version.version_id == "v2.0.0"
    assert registry.GetVersion(model_registry_pb2.GetVersionRequest(
        agent_id="reg-ver", version_id="latest")).version.version_id == "v2.0.0"
    # Predict pins by alias too.
    assert predict(registry, "reg-ver", version_id="champion").version_id == "v2.0.0"
    listed = registry.ListVersions(model_registry_pb2.ListVersionsRequest(agent_id="reg-ver", alias="champion"))
    assert [v.version_id for v in listed.versions] == ["v2.0.0"]
    tagged = registry.UpdateVersionTags(model_registry_pb2.UpdateVersionTagsRequest(
        agent_id="reg-ver", version_id="v1.0.0", set={"team": "support", "reviewed": "yes"})).version
    assert dict(tagged.tags) == {"team": "support", "reviewed": "yes"}
    tagged = registry.UpdateVersionTags(model_registry_pb2.UpdateVersionTagsRequest(
        agent_id="reg-ver", version_id="v1.0.0", remove=["reviewed"])).version
    assert dict(tagged.tags) == {"team": "support"}
    by_tag = registry.ListVersions(model_registry_pb2.ListVersionsRequest(agent_id="reg-ver", tag="team=support"))
    assert [v.version_id for v in by_tag.versions] == ["v1.0.0"]
    assert registry.DeleteVersionAlias(model_registry_pb2.DeleteVersionAliasRequest(
        agent_id="reg-ver", alias="champion")).version_id == "v2.0.0"
    assert rpc_failure(registry.GetVersion, model_registry_pb2.GetVersionRequest(
        agent_id="reg-ver", version_id="champion")).code == grpc.StatusCode.NOT_FOUND
    bad = rpc_failure(registry.SetVersionAlias, model_registry_pb2.SetVersionAliasRequest(
        agent_id="reg-ver", version_id="v1.0.0", alias="Not An Alias"))
    assert bad.field == "alias"
    assert rpc_failure(registry.GetVersion, model_registry_pb2.GetVersionRequest(model_id="reg-ver")).field == \
        "model_id"
    kinds = {e.kind for e in registry.ListAuditEvents(model_registry_pb2.ListAuditEventsRequest(
        agent_id="reg-ver", kind="version.")).events}
    assert {"version.registered", "version.alias_set", "version.alias_removed", "version.tags_updated"} <= kinds


def test_a_tampered_artifact_is_never_served(registry, trained, stack):
    """Same trained model, re-registered with an extra metadata entry (new bytes, new sha256) for an
    agent nothing has served yet; corrupting its file on disk makes Predict refuse it."""
    v = registry.GetVersion(model_registry_pb2.GetVersionRequest(model_id="reg-ver@v1.0.0")).version
    source = next((stack.home / "registry" / "artifacts" / "reg-ver").glob(f"{v.sha256}.onnx"))
    model = onnx.load_from_string(source.read_bytes())
    model.metadata_props.add(key="note", value="re-registered for the integrity test")
    registry.CreateAgent(model_registry_pb2.CreateAgentRequest(agent_id="reg-tamper"))
    copy = registry.RegisterVersion(model_registry_pb2.RegisterVersionRequest(
        agent_id="reg-tamper", onnx_model=model.SerializeToString(), parent_version_id="")).version
    path = stack.home / "registry" / "artifacts" / "reg-tamper" / f"{copy.sha256}.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    failure = rpc_failure(predict, registry, "reg-tamper")
    assert failure.code == grpc.StatusCode.FAILED_PRECONDITION and "integrity" in failure.message
    assert rpc_failure(registry.GetVersionArtifact, model_registry_pb2.GetVersionArtifactRequest(
        agent_id="reg-tamper")).code == grpc.StatusCode.FAILED_PRECONDITION
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert predict(registry, "reg-tamper").version_id == copy.version_id


def test_artifact_download_is_the_registered_bytes(registry, trained):
    got = registry.GetVersionArtifact(model_registry_pb2.GetVersionArtifactRequest(model_id="reg-ver@v1.1.0"))
    assert hashlib.sha256(got.onnx_model).hexdigest() == got.version.sha256 and got.version.version_id == "v1.1.0"
    serving = registry.GetVersionArtifact(model_registry_pb2.GetVersionArtifactRequest(agent_id="reg-ver"))
    assert serving.version.version_id == "v1.0.0"  # the first version serves; newer ones wait for a deploy


def test_registry_stats(registry, trained):
    stats = registry.GetRegistryStats(model_registry_pb2.GetRegistryStatsRequest())
    listed = registry.ListVersions(model_registry_pb2.ListVersionsRequest(page_size=1,
                                                                          include_total_size=True)).total_size
    assert stats.model_count == listed >= 8
    assert stats.agent_count >= 5 and stats.prediction_count >= 1
