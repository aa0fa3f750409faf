"""The model server's routes, one ``APIRouter`` per group; `churnloop.serving.app`
includes them in this order: predict, status, admin."""
