"""What the ERP keeps: products with their stock, and sales orders."""

from django.db import models


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    stock = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.sku


class SalesOrder(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    customer = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
