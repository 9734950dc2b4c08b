"""The bundled synthetic demo ad site: generated content (``content``) and its server (``site``)."""
