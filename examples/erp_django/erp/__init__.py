"""Context7 ERP, reduced to what its monitoring needs: four modules behind a JSON API."""
