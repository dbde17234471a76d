"""The ERP's routes: the request spans (Sentry transactions) are named after them."""

from django.urls import path

from erp import views

urlpatterns = [
    path("login/", views.login_view),
    path("sales/orders/", views.sales_orders),
    path("sales/orders/<int:order_id>/", views.sales_order),
    path("inventory/adjustments/", views.inventory_adjustments),
    path("production/runs/", views.production_runs),
    path("quality/checks/", views.quality_checks),
]
