"""The trainhouse core library: what training, serving and evaluating a model *is*, with no transport.

Everything here is plain Python, NumPy, SciPy and ONNX: the featurizer, the NumPy trainer
(``trainer/``: supervised, few-shot, transfer, reinforcement), GRPO (``grpo/``: environment, tools,
rewards, policy, objective), ONNX export and the ONNX Runtime model, examples, prices and the domain
errors. Every service process imports it; nothing in it imports gRPC, the generated stubs, a service
or the gateway (``tests/test_architecture.py`` checks this), so a trainer runs the same in a worker
process, a Ray task, a test or a notebook.
"""
