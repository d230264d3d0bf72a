"""Dependencies every controller may ask for by name."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from orbit.platform.audit.service import AuditService
from orbit.platform.auth.api_keys import ApiKeyService
from orbit.platform.auth.middleware import PRINCIPAL_KEY
from orbit.platform.auth.service import AccountService
from orbit.platform.crm.activities import ActivityService
from orbit.platform.crm.companies import CompanyService
from orbit.platform.crm.custom_fields import CustomFieldService
from orbit.platform.crm.dashboard import DashboardService
from orbit.platform.crm.deals import DealService, PipelineService
from orbit.platform.crm.merge import MergeService
from orbit.platform.crm.service import ContactService
from orbit.platform.crm.tasks import NotificationService, TaskService
from orbit.platform.crm.views import SavedViewService
from orbit.platform.runtime import Runtime
from orbit.platform.search.service import SearchService
from orbit.tenants.context import ANONYMOUS, Principal, TenantContext, require_tenant
from orbit.tenants.service import WorkspaceService
from orbit.tenants.visibility import VisibilityService


def provide_runtime(state: State) -> Runtime:
    """The process's shared connections."""
    runtime: Runtime = state["runtime"]
    return runtime


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Who is calling (set by the request-context middleware)."""
    principal: Principal = request.state.get(PRINCIPAL_KEY, ANONYMOUS)
    return principal


def provide_tenant(principal: Principal) -> TenantContext:
    """The caller's workspace; a 401 saying what to do when there is none."""
    return require_tenant(principal)


def provide_contacts(runtime: Runtime) -> ContactService:
    """Contact rules."""
    return ContactService(runtime.db)


def provide_companies(runtime: Runtime) -> CompanyService:
    """Company rules."""
    return CompanyService(runtime.db)


def provide_custom_fields(runtime: Runtime) -> CustomFieldService:
    """Custom field definitions."""
    return CustomFieldService(runtime.db)


def provide_merges(runtime: Runtime) -> MergeService:
    """Duplicate suggestions and merges."""
    return MergeService(runtime.db)


def provide_pipelines(runtime: Runtime) -> PipelineService:
    """Pipeline and stage rules."""
    return PipelineService(runtime.db)


def provide_deals(runtime: Runtime) -> DealService:
    """Deal rules."""
    return DealService(runtime.db)


def provide_activities(runtime: Runtime) -> ActivityService:
    """Timeline rules."""
    return ActivityService(runtime.db)


def provide_tasks(runtime: Runtime) -> TaskService:
    """Task rules."""
    return TaskService(runtime.db)


def provide_notifications(runtime: Runtime) -> NotificationService:
    """The bell."""
    return NotificationService(runtime.db)


def provide_dashboards(runtime: Runtime) -> DashboardService:
    """Dashboard numbers."""
    return DashboardService(runtime.db)


def provide_visibility(runtime: Runtime) -> VisibilityService:
    """Record visibility and teams."""
    return VisibilityService(runtime.db)


def provide_views(runtime: Runtime) -> SavedViewService:
    """Saved views of the lists."""
    return SavedViewService(runtime.db)


def provide_search(runtime: Runtime) -> SearchService:
    """The search box."""
    return SearchService(runtime.db)


def provide_workspaces(runtime: Runtime) -> WorkspaceService:
    """Workspace, member and invitation rules."""
    return WorkspaceService(runtime.db)


def provide_accounts(runtime: Runtime) -> AccountService:
    """Sign-up and login."""
    return AccountService(runtime.db, runtime.throttle)


def provide_api_keys(runtime: Runtime) -> ApiKeyService:
    """API key rules."""
    return ApiKeyService(runtime.db)


def provide_audit(runtime: Runtime) -> AuditService:
    """The audit log."""
    return AuditService(runtime.db)


DEPENDENCIES = {
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "tenant": Provide(provide_tenant, sync_to_thread=False),
    "contacts": Provide(provide_contacts, sync_to_thread=False),
    "visibility": Provide(provide_visibility, sync_to_thread=False),
    "companies": Provide(provide_companies, sync_to_thread=False),
    "pipelines": Provide(provide_pipelines, sync_to_thread=False),
    "merges": Provide(provide_merges, sync_to_thread=False),
    "custom_fields": Provide(provide_custom_fields, sync_to_thread=False),
    "deals": Provide(provide_deals, sync_to_thread=False),
    "activities": Provide(provide_activities, sync_to_thread=False),
    "tasks": Provide(provide_tasks, sync_to_thread=False),
    "dashboards": Provide(provide_dashboards, sync_to_thread=False),
    "notifications": Provide(provide_notifications, sync_to_thread=False),
    "search": Provide(provide_search, sync_to_thread=False),
    "views": Provide(provide_views, sync_to_thread=False),
    "workspaces": Provide(provide_workspaces, sync_to_thread=False),
    "accounts": Provide(provide_accounts, sync_to_thread=False),
    "api_keys": Provide(provide_api_keys, sync_to_thread=False),
    "audit": Provide(provide_audit, sync_to_thread=False),
}
