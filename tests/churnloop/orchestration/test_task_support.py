"""What task bodies share: the credentials of the settings masked in Airflow's task logs."""

from airflow.sdk._shared.secrets_masker.secrets_masker import redact

from churnloop.orchestration.task_support import mask_credentials
from churnloop.settings import get_settings

PASSWORD = "pl4nted-pw"
TOKEN = "test-admin-token"


def test_every_credential_of_the_settings_is_masked_in_task_logs(settings, monkeypatch):
    monkeypatch.setenv("CHURNLOOP_MLFLOW_TRACKING_URI", f"http://mlflow:{PASSWORD}@tracking:5000")
    monkeypatch.setenv("CHURNLOOP_SERVING_ADMIN_TOKEN", TOKEN)
    assert get_settings().serving_admin_token is not None
    line = f"MlflowException: cannot reach http://mlflow:{PASSWORD}@tracking:5000 ({TOKEN})"
    assert redact(line) == line, "nothing is masked before the callback"

    mask_credentials()

    masked = redact(line)
    assert PASSWORD not in masked and TOKEN not in masked
    assert "http://mlflow:***@tracking:5000" in masked
