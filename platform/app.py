"""``create_app()``: the one place that wires middleware, routes, templates and services."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from orbit.billing.controllers import stripe_webhook
from orbit.frontend import i18n
from orbit.frontend.account_pages import AccountSettingsPages
from orbit.frontend.audit_pages import AuditPages
from orbit.frontend.billing_pages import BillingPages
from orbit.frontend.crm_pages import CrmPages
from orbit.frontend.import_pages import ImportPages
from orbit.frontend.marketplace_pages import MarketplacePages
from orbit.frontend.merge_pages import MergePages
from orbit.frontend.pages import PAGE_CONTROLLERS
from orbit.frontend.portability_pages import PortabilityPages
from orbit.frontend.search_pages import SearchPages
from orbit.platform.api.deps import DEPENDENCIES
from orbit.platform.api.errors import EXCEPTION_HANDLERS
from orbit.platform.api.health import healthz, readyz
from orbit.platform.audit.controllers import AuditController
from orbit.platform.auth.controllers import AccountController, ApiKeyController
from orbit.platform.auth.middleware import RequestContextMiddleware
from orbit.platform.crm.controllers import (
    ActivityController,
    CompanyController,
    ContactController,
    CustomFieldController,
    DealController,
    NotificationController,
    PipelineController,
    SavedViewController,
    TaskController,
)
from orbit.platform.events.controllers import WebhookController
from orbit.platform.events.pages import WebhookPages
from orbit.platform.imports.controllers import ExportController, ImportController
from orbit.platform.observability.metrics import Metrics, metrics_endpoint
from orbit.platform.observability.middleware import ObservabilityMiddleware
from orbit.platform.runtime import Runtime
from orbit.platform.search.controllers import SearchController
from orbit.platform.version import ORBIT_VERSION
from orbit.plugins.controllers import MarketplaceController
from orbit.plugins.routes import plugin_routers
from orbit.tenants.controllers import MemberController, VisibilityController, WorkspaceController

if TYPE_CHECKING:
    from orbit.platform.db.servers import Endpoints
    from orbit.platform.settings import Settings
    from orbit.plugins.registry import PluginRegistry

FRONTEND = Path(i18n.__file__).parent


def create_app(
    settings: Settings, endpoints: Endpoints, *, plugin_registry: PluginRegistry | None = None
) -> Litestar:
    """The Orbit web application for these settings and servers.

    Plugins are those installed (``orbit.plugins`` entry points) unless
    ``plugin_registry`` gives others (tests).
    """
    logging.getLogger("orbit").setLevel(settings.log_level)
    runtime = Runtime.create(settings, endpoints, plugin_registry)
    metrics = Metrics(runtime)

    def configure_jinja(engine: JinjaTemplateEngine) -> None:
        i18n.install(engine.engine)

    app = Litestar(
        route_handlers=[
            healthz,
            stripe_webhook,
            readyz,
            metrics_endpoint,
            AccountController,
            ApiKeyController,
            MemberController,
            VisibilityController,
            WorkspaceController,
            ContactController,
            CompanyController,
            PipelineController,
            CustomFieldController,
            DealController,
            ActivityController,
            TaskController,
            NotificationController,
            WebhookController,
            AuditController,
            SearchController,
            SavedViewController,
            ImportController,
            ExportController,
            SearchPages,
            MarketplaceController,
            *PAGE_CONTROLLERS,
            MergePages,
            CrmPages,
            ImportPages,
            AccountSettingsPages,
            AuditPages,
            BillingPages,
            WebhookPages,
            MarketplacePages,
            PortabilityPages,
            *plugin_routers(runtime.plugins.registry),
            create_static_files_router(
                path="/static", directories=[FRONTEND / "static"], include_in_schema=False
            ),
        ],
        dependencies=DEPENDENCIES,
        middleware=[RequestContextMiddleware()],
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(
            directory=FRONTEND / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=configure_jinja,
        ),
        openapi_config=OpenAPIConfig(
            title="Orbit CRM API",
            version=ORBIT_VERSION,
            path="/api/docs",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        state=State({"runtime": runtime, "metrics": metrics}),
        # Logging is set up once by `orbit` (observability.logs), not reset by Litestar.
        logging_config=None,
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
    )
    # Outside routing and exception handling, so every final status is logged and counted.
    app.asgi_handler = ObservabilityMiddleware(app.asgi_handler, metrics)
    return app
