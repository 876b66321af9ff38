"""THE table of which scope each gRPC method needs: the services' counterpart of trainhouse.gateway.scopes.

A direct gRPC caller gets exactly what the same token gets over HTTP: the scopes below match the
gateway's routes for the same operation. A method missing from the table is refused (fail closed);
tests/test_rpc_scopes.py checks that every method of every service has an entry. Health and
reflection are not in the table: they stay open for probes and grpcurl.

Calls between the platform's processes carry the original caller's account with the delegated
scopes of trainhouse.common.identity.delegated: the scope was checked where the call entered (the
gateway's route table, or this table for a direct gRPC call), the account is checked at every hop.
"""
from __future__ import annotations

VIEW, START, CANCEL, EVALUATE = "training:view", "training:start", "training:cancel", "training:evaluate"
GENERATE, EXPORT, DEPLOY, ADMIN = "data:generate", "data:export", "models:deploy", "admin"

RPC_SCOPES: dict[str, str] = {
    # TrainingService
    "trainhouse.v1.TrainingService/StartJob": START,
    "trainhouse.v1.TrainingService/GetJob": VIEW,
    "trainhouse.v1.TrainingService/ListJobs": VIEW,
    "trainhouse.v1.TrainingService/CancelJob": CANCEL,
    "trainhouse.v1.TrainingService/PauseJob": CANCEL,
    "trainhouse.v1.TrainingService/WatchJob": VIEW,
    "trainhouse.v1.TrainingService/ListJobEvents": VIEW,
    "trainhouse.v1.TrainingService/ListCheckpoints": VIEW,
    "trainhouse.v1.TrainingService/ListMetrics": VIEW,
    "trainhouse.v1.TrainingService/ResumeJob": START,
    "trainhouse.v1.TrainingService/ListJobExamples": EXPORT,
    "trainhouse.v1.TrainingService/WatchAllEvents": VIEW,
    "trainhouse.v1.TrainingService/ExportPolicy": EXPORT,
    "trainhouse.v1.TrainingService/AdaptAgent": START,
    "trainhouse.v1.TrainingService/GetAutoTrainingConfig": VIEW,
    "trainhouse.v1.TrainingService/UpdateAutoTrainingConfig": ADMIN,
    "trainhouse.v1.TrainingService/ListAutoTrainingRuns": VIEW,
    "trainhouse.v1.TrainingService/CheckAutoTraining": ADMIN,
    # Registering a checkpoint creates a version, as a job's own registration does (RegisterVersion:
    # training:start); serving it is a separate DeployVersion (models:deploy).
    "trainhouse.v1.TrainingService/RegisterCheckpoint": START,
    # A sweep starts jobs: creating one needs what starting a job needs.
    "trainhouse.v1.TrainingService/CreateSweep": START,
    "trainhouse.v1.TrainingService/GetSweep": VIEW,
    "trainhouse.v1.TrainingService/ListSweeps": VIEW,
    "trainhouse.v1.TrainingService/CancelSweep": CANCEL,
    # DataService
    "trainhouse.v1.DataService/CreateDataset": GENERATE,
    "trainhouse.v1.DataService/CreateDatasetFromJsonl": GENERATE,
    "trainhouse.v1.DataService/GetDataset": VIEW,
    "trainhouse.v1.DataService/ListDatasets": VIEW,
    "trainhouse.v1.DataService/DeleteDataset": GENERATE,
    "trainhouse.v1.DataService/StreamExamples": EXPORT,
    "trainhouse.v1.DataService/GenerateSyntheticData": GENERATE,
    "trainhouse.v1.DataService/ListScenarioTypes": VIEW,
    "trainhouse.v1.DataService/CreateTrainingModule": GENERATE,
    "trainhouse.v1.DataService/GetTrainingModule": VIEW,
    "trainhouse.v1.DataService/ListTrainingModules": VIEW,
    "trainhouse.v1.DataService/DeleteTrainingModule": GENERATE,
    "trainhouse.v1.DataService/ValidateDataset": VIEW,
    "trainhouse.v1.DataService/IngestTrajectories": GENERATE,
    "trainhouse.v1.DataService/GetTrajectory": VIEW,
    "trainhouse.v1.DataService/ListTrajectories": VIEW,
    "trainhouse.v1.DataService/ExportTrajectories": EXPORT,
    "trainhouse.v1.DataService/CountTrajectories": VIEW,
    "trainhouse.v1.DataService/BuildDatasetFromTrajectories": GENERATE,
    # EvaluationService
    "trainhouse.v1.EvaluationService/EvaluateVersion": EVALUATE,
    "trainhouse.v1.EvaluationService/Evaluate": EVALUATE,
    "trainhouse.v1.EvaluationService/GetEvaluation": VIEW,
    "trainhouse.v1.EvaluationService/ListEvaluations": VIEW,
    "trainhouse.v1.EvaluationService/EvaluateTrainingResults": EVALUATE,
    "trainhouse.v1.EvaluationService/ListBenchmarkSuites": VIEW,
    "trainhouse.v1.EvaluationService/RunBenchmark": EVALUATE,
    "trainhouse.v1.EvaluationService/GetBenchmarkRun": VIEW,
    "trainhouse.v1.EvaluationService/CompareRuns": EVALUATE,
    "trainhouse.v1.EvaluationService/GetComparison": VIEW,
    "trainhouse.v1.EvaluationService/AnalyzeAndOptimize": EVALUATE,
    "trainhouse.v1.EvaluationService/GenerateReport": EVALUATE,
    # ModelRegistry
    "trainhouse.v1.ModelRegistry/CreateAgent": START,
    "trainhouse.v1.ModelRegistry/GetAgent": VIEW,
    "trainhouse.v1.ModelRegistry/ListAgents": VIEW,
    "trainhouse.v1.ModelRegistry/UpdateAgent": DEPLOY,
    "trainhouse.v1.ModelRegistry/RegisterVersion": START,
    "trainhouse.v1.ModelRegistry/ListVersions": VIEW,
    "trainhouse.v1.ModelRegistry/GetVersion": VIEW,
    "trainhouse.v1.ModelRegistry/GetVersionArtifact": EXPORT,
    "trainhouse.v1.ModelRegistry/SetVersionAlias": DEPLOY,
    "trainhouse.v1.ModelRegistry/ListVersionAliases": VIEW,
    "trainhouse.v1.ModelRegistry/DeleteVersionAlias": DEPLOY,
    "trainhouse.v1.ModelRegistry/UpdateVersionTags": DEPLOY,
    "trainhouse.v1.ModelRegistry/Predict": VIEW,
    "trainhouse.v1.ModelRegistry/RecordFeedback": VIEW,
    "trainhouse.v1.ModelRegistry/ListFeedback": VIEW,
    "trainhouse.v1.ModelRegistry/CountFeedback": VIEW,
    "trainhouse.v1.ModelRegistry/DeployVersion": DEPLOY,
    "trainhouse.v1.ModelRegistry/GetDeployment": VIEW,
    "trainhouse.v1.ModelRegistry/ListDeployments": VIEW,
    "trainhouse.v1.ModelRegistry/AdvanceRollout": DEPLOY,
    "trainhouse.v1.ModelRegistry/RollbackVersion": DEPLOY,
    "trainhouse.v1.ModelRegistry/ActivateVersion": DEPLOY,
    "trainhouse.v1.ModelRegistry/ListAuditEvents": VIEW,
    "trainhouse.v1.ModelRegistry/ImportToOllama": DEPLOY,
    "trainhouse.v1.ModelRegistry/GetRegistryStats": VIEW,
    # A gateway's serving replica (docs/serving.md): the table names every account's artifacts, and
    # recorded predictions are taken as served; the gateway calls both as SYSTEM.
    "trainhouse.v1.ModelRegistry/WatchServing": ADMIN,
    "trainhouse.v1.ModelRegistry/RecordPredictions": ADMIN,
}


def scope_of(full_method: str) -> str | None:
    """The scope of '/pkg.Service/Method' (or 'pkg.Service/Method'); None when it has no entry."""
    return RPC_SCOPES.get(full_method.lstrip("/"))
