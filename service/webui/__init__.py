"""The browser surfaces the API process serves itself: the API explorers (``/docs``,
``/redoc``) and the dashboard (``/ui``), with their third-party assets from pinned npm
packages fetched at install time (``scripts/fetch-ui-assets.sh``), never from a CDN."""
