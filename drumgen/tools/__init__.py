"""Tools for the people who build the model: data, training, evaluation, metrics, benchmarks, load tests."""
