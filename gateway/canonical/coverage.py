"""Which canonical route serves each RPC, and which RPCs are not user-facing (and why).

tests/gateway/canonical/test_coverage.py reads every RPC from the proto descriptors and fails when
one is in neither table, when its route is not served, when the route's scope differs from the
RPC's, or when the SDK has no method named after the route's operation id.
"""
from __future__ import annotations

T, D, E, R = "trainhouse.v1.TrainingService", "trainhouse.v1.DataService", "trainhouse.v1.EvaluationService", \
    "trainhouse.v1.ModelRegistry"

# RPC full name -> (HTTP method, route path); several routes may serve one RPC (the first is listed).
ROUTE_OF_RPC: dict[str, tuple[str, str]] = {
    f"{T}/StartJob": ("POST", "/v1/jobs"),
    f"{T}/GetJob": ("GET", "/v1/jobs/{job_id}"),
    f"{T}/ListJobs": ("GET", "/v1/jobs"),
    f"{T}/CancelJob": ("POST", "/v1/jobs/{job_id}/cancel"),
    f"{T}/PauseJob": ("POST", "/v1/jobs/{job_id}/pause"),
    f"{T}/WatchJob": ("GET", "/v1/jobs/{job_id}/events/stream"),
    f"{T}/ListJobEvents": ("GET", "/v1/jobs/{job_id}/events"),
    f"{T}/ListCheckpoints": ("GET", "/v1/jobs/{job_id}/checkpoints"),
    f"{T}/ListMetrics": ("GET", "/v1/jobs/{job_id}/metrics"),
    f"{T}/ResumeJob": ("POST", "/v1/jobs/{job_id}/resume"),
    f"{T}/ListJobExamples": ("GET", "/v1/jobs/{job_id}/examples"),
    f"{T}/AdaptAgent": ("POST", "/v1/agents/{agent_id}/adapt"),
    f"{T}/GetAutoTrainingConfig": ("GET", "/v1/agents/{agent_id}/auto_training"),
    f"{T}/UpdateAutoTrainingConfig": ("PATCH", "/v1/agents/{agent_id}/auto_training"),
    f"{T}/ListAutoTrainingRuns": ("GET", "/v1/agents/{agent_id}/auto_training/runs"),
    f"{T}/CheckAutoTraining": ("POST", "/v1/agents/{agent_id}/auto_training/check"),
    f"{T}/RegisterCheckpoint": ("POST", "/v1/jobs/{job_id}/checkpoints/{checkpoint_id}/register"),
    f"{T}/CreateSweep": ("POST", "/v1/sweeps"),
    f"{T}/GetSweep": ("GET", "/v1/sweeps/{sweep_id}"),
    f"{T}/ListSweeps": ("GET", "/v1/sweeps"),
    f"{T}/CancelSweep": ("POST", "/v1/sweeps/{sweep_id}/cancel"),
    f"{D}/CreateDataset": ("POST", "/v1/datasets"),
    f"{D}/CreateDatasetFromJsonl": ("POST", "/v1/datasets/upload"),
    f"{D}/GetDataset": ("GET", "/v1/datasets/{dataset_id}"),
    f"{D}/ListDatasets": ("GET", "/v1/datasets"),
    f"{D}/DeleteDataset": ("DELETE", "/v1/datasets/{dataset_id}"),
    f"{D}/StreamExamples": ("GET", "/v1/datasets/{dataset_id}/content"),
    f"{D}/GenerateSyntheticData": ("POST", "/v1/datasets/generate"),
    f"{D}/ListScenarioTypes": ("GET", "/v1/scenarios"),
    f"{D}/CreateTrainingModule": ("POST", "/v1/modules"),
    f"{D}/GetTrainingModule": ("GET", "/v1/modules/{module_id}"),
    f"{D}/ListTrainingModules": ("GET", "/v1/modules"),
    f"{D}/DeleteTrainingModule": ("DELETE", "/v1/modules/{module_id}"),
    f"{D}/ValidateDataset": ("POST", "/v1/datasets/validate"),
    f"{D}/IngestTrajectories": ("POST", "/v1/trajectories"),
    f"{D}/GetTrajectory": ("GET", "/v1/trajectories/{trajectory_id}"),
    f"{D}/ListTrajectories": ("GET", "/v1/trajectories"),
    f"{D}/ExportTrajectories": ("GET", "/v1/trajectories/export"),
    f"{D}/CountTrajectories": ("GET", "/v1/trajectories/count"),
    f"{D}/BuildDatasetFromTrajectories": ("POST", "/v1/datasets/from_trajectories"),
    f"{E}/EvaluateVersion": ("POST", "/v1/agents/{agent_id}/versions/{version_id}/evaluate"),
    f"{E}/Evaluate": ("POST", "/v1/evaluations"),
    f"{E}/GetEvaluation": ("GET", "/v1/evaluations/{evaluation_id}"),
    f"{E}/ListEvaluations": ("GET", "/v1/evaluations"),
    f"{E}/EvaluateTrainingResults": ("POST", "/v1/jobs/{job_id}/evaluate"),
    f"{E}/ListBenchmarkSuites": ("GET", "/v1/benchmarks/suites"),
    f"{E}/RunBenchmark": ("POST", "/v1/benchmarks"),
    f"{E}/GetBenchmarkRun": ("GET", "/v1/benchmarks/{benchmark_id}"),
    f"{E}/CompareRuns": ("POST", "/v1/comparisons"),
    f"{E}/GetComparison": ("GET", "/v1/comparisons/{comparison_id}"),
    f"{E}/AnalyzeAndOptimize": ("POST", "/v1/agents/{agent_id}/analyze"),
    f"{E}/GenerateReport": ("POST", "/v1/reports"),
    f"{R}/CreateAgent": ("POST", "/v1/agents"),
    f"{R}/GetAgent": ("GET", "/v1/agents/{agent_id}"),
    f"{R}/ListAgents": ("GET", "/v1/agents"),
    f"{R}/UpdateAgent": ("PATCH", "/v1/agents/{agent_id}"),
    f"{R}/ListVersions": ("GET", "/v1/agents/{agent_id}/versions"),
    f"{R}/GetVersion": ("GET", "/v1/agents/{agent_id}/versions/{version_id}"),
    f"{R}/GetVersionArtifact": ("GET", "/v1/agents/{agent_id}/versions/{version_id}/artifact"),
    f"{R}/SetVersionAlias": ("PUT", "/v1/agents/{agent_id}/aliases/{alias}"),
    f"{R}/ListVersionAliases": ("GET", "/v1/agents/{agent_id}/aliases"),
    f"{R}/DeleteVersionAlias": ("DELETE", "/v1/agents/{agent_id}/aliases/{alias}"),
    f"{R}/UpdateVersionTags": ("PATCH", "/v1/agents/{agent_id}/versions/{version_id}/tags"),
    f"{R}/Predict": ("POST", "/v1/agents/{agent_id}/predict"),
    f"{R}/RecordFeedback": ("POST", "/v1/agents/{agent_id}/feedback"),
    f"{R}/ListFeedback": ("GET", "/v1/agents/{agent_id}/feedback"),
    f"{R}/CountFeedback": ("GET", "/v1/agents/{agent_id}/feedback/count"),
    f"{R}/DeployVersion": ("POST", "/v1/deployments"),
    f"{R}/GetDeployment": ("GET", "/v1/deployments/{deployment_id}"),
    f"{R}/ListDeployments": ("GET", "/v1/deployments"),
    f"{R}/AdvanceRollout": ("POST", "/v1/deployments/{deployment_id}/advance"),
    f"{R}/RollbackVersion": ("POST", "/v1/agents/{agent_id}/rollback"),
    f"{R}/ActivateVersion": ("POST", "/v1/agents/{agent_id}/versions/{version_id}/activate"),
    f"{R}/ListAuditEvents": ("GET", "/v1/agents/{agent_id}/audit"),
    f"{R}/ImportToOllama": ("POST", "/v1/agents/{agent_id}/versions/{version_id}/ollama"),
    f"{R}/GetRegistryStats": ("GET", "/v1/agents/stats"),
}

# Not user-facing: the platform's own plumbing, each with the reason.
INTERNAL_RPCS: dict[str, str] = {
    f"{T}/WatchAllEvents": "every account's event feed for the gateway's webhook dispatcher and dashboards; "
                           "users read one job's events (WatchJob) or subscribe a webhook",
    f"{T}/ExportPolicy": "a GRPO checkpoint's policy for the EvaluationService's rollouts; users evaluate the "
                         "checkpoint (POST /v1/evaluations with checkpoint_id)",
    f"{R}/RegisterVersion": "the training worker registers the versions it exports; users register a "
                            "checkpoint (POST /v1/jobs/{job_id}/checkpoints/{checkpoint_id}/register)",
    f"{R}/WatchServing": "every account's serving table for the gateway's serving replica (docs/serving.md); "
                         "users read versions and deployments, and predict",
    f"{R}/RecordPredictions": "the gateway's serving replica records the predictions it answered; users "
                              "predict (POST /v1/agents/{agent_id}/predict)",
}

# Routes with no RPC of their own (the gateway's stores, or a second route over an RPC).
EXTRA_ROUTES: dict[tuple[str, str], str] = {}
