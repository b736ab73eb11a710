from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm

from .forms import ThrottledAuthenticationForm
from .models import AuditEvent, Membership, Organization


class ThrottledAdminAuthenticationForm(ThrottledAuthenticationForm, AdminAuthenticationForm):
    """The admin sign-in behind the app's login lockout: its failures (including a non-staff
    account) count toward the same per-username and per-client limits as /login/ and
    /api/v1/auth/token/, and a locked username is refused here as well."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked": ThrottledAuthenticationForm.error_messages["locked"],
    }


# /admin/ stays available in production (operators use it), so it shares the lockout rather
# than being switched off.
admin.site.login_form = ThrottledAdminAuthenticationForm


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only by design."""

    list_display = ["at", "organization", "actor_label", "verb", "target_label"]
    list_filter = ["organization", "actor_kind", "verb"]
    search_fields = ["actor_label", "target_label", "verb"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
