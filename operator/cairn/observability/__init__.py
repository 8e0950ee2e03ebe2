"""What the operator tells about itself: Prometheus metrics (metrics, served by server) and the
reconcile context its log lines carry (logs); reconciles.reconciling ties both to one reconcile.

Nothing here imports kopf: the controllers wire it in, domain code may call the metric helpers.
"""
