"""Fault injection (``lvlup chaos``): the fault run (:mod:`infra.chaos.run`), the API load it
kills (:mod:`infra.chaos.api_load`) and the file-armed failpoints handed to the processes it
starts (:mod:`infra.chaos.failpoints`). Product packages only see the no-op-by-default
:class:`streams.failpoints.Failpoints`."""

__all__: list[str] = []
