from services.runtime.service import main

from .app import build_app
from .settings import GatewaySettings

if __name__ == "__main__":
    main(build_app, GatewaySettings())
