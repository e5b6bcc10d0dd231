import asyncio

from services.runtime.service import configure_logging, run_until_signalled

from .app import build_app
from .settings import RouterSettings


def main() -> None:
    settings = RouterSettings()
    configure_logging(settings.log_level)
    asyncio.run(run_until_signalled(build_app(settings)))


if __name__ == "__main__":
    main()
