import os

from churnloop.serving.process import PROMETHEUS_MULTIPROCESS_VARIABLES, server_environment


def test_importing_feast_sets_a_prometheus_multiprocess_folder():
    """Why the server's environment drops it: if Feast stops setting it, so can we."""
    import feast  # noqa: F401

    assert any(name in os.environ for name in PROMETHEUS_MULTIPROCESS_VARIABLES)


def test_the_server_gets_its_settings_and_not_feasts_prometheus_folder(settings):
    inherited = {name: "/tmp/feast_metrics_x" for name in PROMETHEUS_MULTIPROCESS_VARIABLES}
    environment = server_environment(settings, {**inherited, "PATH": "/usr/bin"})
    assert environment == {
        "PATH": "/usr/bin",
        "CHURNLOOP_HOME": str(settings.home),
        "CHURNLOOP_SERVING_HOST": settings.serving_host,
        "CHURNLOOP_SERVING_PORT": str(settings.serving_port),
    }
