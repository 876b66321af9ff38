"""EvaluationService RPCs: validate at the edge, call the core, build the response."""
from __future__ import annotations

from trainhouse.common import identity
from trainhouse.core.errors import InvalidArgument, PermissionDenied
from trainhouse.common.example_codec import example_dicts, query_dicts
from trainhouse.common.pagination import page_request
from trainhouse.evaluation.benchmarks import Benchmarks, suite_protos
from trainhouse.evaluation.compare import RunComparer
from trainhouse.evaluation.evaluator import EvalSpec, Evaluator
from trainhouse.evaluation.optimize import Optimizer
from trainhouse.evaluation.peers import Peers
from trainhouse.evaluation.reports import Reports
from trainhouse.evaluation.store import EvaluationStore
from trainhouse.evaluation.training_results import TrainingResults
from trainhouse.v1 import evaluation_service_pb2 as pb
from trainhouse.v1 import evaluation_service_pb2_grpc


class EvaluationServicer(evaluation_service_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, store: EvaluationStore, peers: Peers | None = None):
        self.store = store
        peers = peers or Peers()
        self.evaluator = Evaluator(store, peers)
        self.training_results = TrainingResults(self.evaluator)
        self.benchmarks = Benchmarks(store, peers)
        self.comparer = RunComparer(self.evaluator)
        self.optimizer = Optimizer(self.evaluator)
        self.reports = Reports(store, peers, self.training_results, self.comparer, self.optimizer)

    def EvaluateVersion(self, request, context):
        if not request.agent_id:
            raise InvalidArgument("agent_id", "is required")
        if not request.examples and not request.dataset_id:
            raise InvalidArgument("examples", "give inline examples or a dataset_id")
        evaluation, _, _ = self.evaluator.evaluate(EvalSpec(
            agent_id=request.agent_id, version_id=request.version_id,
            examples=example_dicts(request.examples) or None, dataset_id=request.dataset_id))
        return pb.EvaluateVersionResponse(evaluation=evaluation)

    def Evaluate(self, request, context):
        evaluation, reused, _ = self.evaluator.evaluate(EvalSpec(
            agent_id=request.agent_id, version_id=request.version_id, job_id=request.job_id,
            examples=example_dicts(request.examples) or None, dataset_id=request.dataset_id,
            test_set_job_id=request.test_set_job_id, test_set_split=request.test_set_split,
            metrics=list(request.metrics), evaluation_type=request.evaluation_type,
            compare_to_baseline=request.compare_to_baseline, baseline_job_id=request.baseline_job_id,
            baseline_version_id=request.baseline_version_id, evaluation_id=request.evaluation_id,
            seed=request.seed if request.HasField("seed") else 0, checkpoint_id=request.checkpoint_id,
            evaluation_queries=query_dicts(request.evaluation_queries) or None, model_kind=request.model_kind))
        return pb.EvaluateResponse(evaluation=evaluation, reused=reused)

    def GetEvaluation(self, request, context):
        if not request.evaluation_id:
            raise InvalidArgument("evaluation_id", "is required")
        return pb.GetEvaluationResponse(evaluation=self.store.get(request.evaluation_id))

    def ListEvaluations(self, request, context):
        found = self.store.list(page_request(request, 50, 1000), agent_id=request.agent_id, job_id=request.job_id,
                                version_id=request.version_id)
        return pb.ListEvaluationsResponse(evaluations=found.rows, next_page_token=found.next_page_token,
                                          total_size=found.total_size)

    def EvaluateTrainingResults(self, request, context):
        return self.training_results.run(request.job_id, example_dicts(request.test_data),
                                         list(request.evaluation_criteria), request.benchmark_against,
                                         request.evaluation_id)

    def ListBenchmarkSuites(self, request, context):
        return pb.ListBenchmarkSuitesResponse(suites=suite_protos())

    def RunBenchmark(self, request, context):
        agent_id, version_id = request.agent_id, request.version_id
        if request.model_id:
            if agent_id or version_id:
                raise InvalidArgument("model_id", "give model_id or agent_id/version_id, not both")
            agent_id, sep, version_id = request.model_id.rpartition("@")
            if not sep or not agent_id or not version_id:
                raise InvalidArgument("model_id", "must be '<agent_id>@<version_id>'")
        return pb.RunBenchmarkResponse(run=self.benchmarks.run(agent_id, version_id, list(request.suites),
                                                               example_dicts(request.examples)))

    def GetBenchmarkRun(self, request, context):
        if not request.benchmark_id:
            raise InvalidArgument("benchmark_id", "is required")
        return pb.GetBenchmarkRunResponse(run=self.store.get_benchmark_run(request.benchmark_id))

    def CompareRuns(self, request, context):
        comparison, reused = self.comparer.compare(
            list(request.run_ids), list(request.comparison_metrics), request.statistical_tests,
            request.generate_recommendations, example_dicts(request.examples), request.comparison_id,
            request.seed if request.HasField("seed") else 0)
        return pb.CompareRunsResponse(comparison=comparison, reused=reused)

    def GetComparison(self, request, context):
        if not request.comparison_id:
            raise InvalidArgument("comparison_id", "is required")
        return pb.GetComparisonResponse(comparison=self.store.get_comparison(request.comparison_id))

    def AnalyzeAndOptimize(self, request, context):
        # Analysing needs only the method's own scope; starting the sweep starts training jobs, so it
        # needs what StartJob and CreateSweep need, checked before any analysis work is done.
        if request.start_sweep and not identity.current().allows("training:start"):
            raise PermissionDenied("start_sweep needs the 'training:start' scope", field="start_sweep")
        return self.optimizer.analyze(request.agent_id, list(request.optimization_goals), request.start_sweep)

    def GenerateReport(self, request, context):
        return pb.GenerateReportResponse(report=self.reports.generate(
            request.job_id, request.agent_id, list(request.run_ids), request.report_type,
            list(request.include_sections), request.format))
