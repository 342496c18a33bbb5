"""Beam's Dask runner, with fixes: bounded partitions, tagged outputs, the collector's thresholds.

Beam 2.77's `DaskRunner` translates `GroupByKey` to `dask.bag.groupby` with as many output partitions as the
input has, and `Flatten` to `dask.bag.concat`, which adds its inputs' partitions up. A chain step joins its
states with its outcomes (`CoGroupByKey` = Flatten + GroupByKey), so the partition count triples with every
step and every join after it: a five-step chain and its filters reached thousands of partitions and a task
graph the scheduler spent minutes on. Here both keep at most `--dask_npartitions` partitions (default: the
cluster's worker threads, at least `MIN_PARTITIONS`). More partitions than threads only cost transfers: the
duplicate filter on 20,000 records with two single-thread workers took 22.6 s at 8 partitions and 18.1 s at 2,
and the generation pipeline 53.9 s and 40.5 s. Beam's runner makes `Reshuffle` a no-op; a repartition there
balanced the compute but its transfers cost more than it saved (23.0 s, 63.2 s), so it is left as Beam has it.
A `Create` is spread over the threads too (Beam puts up to 128 items in one partition): Dask runs a task where
its inputs are, so everything downstream of one partition stayed on one worker. With the filter's records
shuffled through a dozen steps that cost more than it gained (30.4 s against 22.5 s at 20,000); since they go
through one shuffle it gains (at 100,000 with two workers: 40.5 and 49.4 s, against 49.4 and 73.8 s).

Its ParDo drops the tags of a multi-output ParDo's outputs (a bundle's result is each output's bare value)
and its visitor hands every consumer the producer's whole bag: a pipeline that splits records from dead
letters with `with_outputs` gets both in each branch. It also collects a bundle's outputs before it calls
`finish_bundle`, so what a DoFn emits there is lost. Here a bundle keeps each output's tag and what
`finish_bundle` emits, and each consumer reads only its own tag's values (untagged again).

Each bundle runs with the collector thresholds `generate` gives a run in-process (`gc_tuning.fewer_collections`):
a bundle of the filter's buckets holds tens of thousands of live objects, and the default thresholds walked them
again and again (in-process, the filter at 100,000 records took 50.5 s without them and 31–33 s with them).

Its result leaves the client connected; here the client is closed when the pipeline is done. Everything else
is Beam's runner as it is. `pipeline_options` substitutes this runner when Beam's is named.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.runners.dask import dask_runner
from apache_beam.runners.dask import transform_evaluator as te
from apache_beam.runners.dask.overrides import _Flatten, _GroupByKeyOnly

from valuecorpus.pipelines.engine.gc_tuning import fewer_collections

BEAM_DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
MIN_PARTITIONS = 2
_LIMIT = {"partitions": MIN_PARTITIONS}


class _BoundedGroupByKey(te.GroupByKey):
    def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
        def key(item: Any) -> Any:
            return item[0]

        def value(item: Any) -> Any:
            k, v = item
            return k, [te.defenestrate(elm[1]) for elm in v]

        # always the bound, not the input's count: a Create makes one partition of up to 128 elements (a plan's
        # row groups, a benchmark's chunks), and a grouping that kept one partition left every later step on
        # one worker
        return input_bag.groupby(key, npartitions=_LIMIT["partitions"]).map(value)


def _bundle(items: Any, fn: Any, window_fn: Any, label: str, args: list[Any], kwargs: dict[str, Any],
            side_inputs: Any) -> list[Any]:
    """One Dask partition through a DoFn, as Beam's `apply_dofn_to_bundle`, but with receivers of its own, the
    outputs of `finish_bundle` included and the tags kept (`TaggedOutput(tag, WindowedValue)`)."""
    from apache_beam import DoFn, TaggedOutput
    from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler

    receivers = te.OneReceiver()
    handler = _OutputHandler(window_fn=window_fn, main_receivers=receivers[None], tagged_receivers=receivers,
                             per_element_output_counter=None, output_batch_converter=None,
                             process_yields_batches=False, process_batch_yields_elements=False)
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(fn), handler, context=DoFnContext(label, state=None), side_inputs=side_inputs,
        input_args=args, input_kwargs=kwargs, user_state_context=None,
        bundle_finalizer_param=DoFn.BundleFinalizerParam())
    with fewer_collections():  # as `generate` runs the in-process runner: a bundle makes many live objects
        invoker.invoke_setup()
        invoker.invoke_start_bundle()
        for item in items:
            invoker.invoke_process(item)
        invoker.invoke_finish_bundle()
        invoker.invoke_teardown()
    return [v if isinstance(v, TaggedOutput) else v.value for v in receivers.values]


class _TaggedParDo(te.ParDo):
    def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
        transform = self.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        return input_bag.map(te.get_windowed_value, window_fn).map_partitions(
            _bundle, transform.fn, window_fn, transform.label, list(args), kwargs, side_inputs)


class _BoundedFlatten(te.Flatten):
    def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
        import dask.bag as db

        bag = db.concat(input_bag)
        limit = _LIMIT["partitions"]
        return bag.repartition(limit) if bag.npartitions > limit else bag


def _of_tag(tag: Any) -> Any:
    from apache_beam.pvalue import TaggedOutput

    def keep(item: Any) -> bool:
        if isinstance(item, TaggedOutput):
            return item.tag == tag
        return tag is None

    return keep


def _untagged(item: Any) -> Any:
    from apache_beam.pvalue import TaggedOutput

    return te.defenestrate(item.value) if isinstance(item, TaggedOutput) else item


def _cluster_threads() -> int:
    """The worker threads of the cluster Beam's runner has just connected to (its client is the default one)."""
    from distributed import default_client

    return max(MIN_PARTITIONS, sum(default_client().nthreads().values()))


class DaskRunner(dask_runner.DaskRunner):
    """`apache_beam.runners.dask.dask_runner.DaskRunner` with at most `--dask_npartitions` partitions per bag,
    and each tagged output read by its own consumers only."""

    @staticmethod
    def to_dask_bag_visitor(bag_kwargs: Any = None) -> Any:
        import collections
        import dataclasses

        from apache_beam import pvalue
        from apache_beam.pipeline import PipelineVisitor
        from apache_beam.runners.dask.transform_evaluator import NoOp

        bag_kwargs = dict(bag_kwargs or {})
        if not _LIMIT["partitions"]:
            _LIMIT["partitions"] = _cluster_threads()
        if not bag_kwargs.get("npartitions") and not bag_kwargs.get("partition_size"):
            # a Create spread over the threads: Dask runs a task where its inputs are, so everything downstream
            # of a one-partition Create stayed on one worker (Beam's default is 128 items per partition)
            bag_kwargs["npartitions"] = _LIMIT["partitions"]

        @dataclasses.dataclass
        class TaggedBagVisitor(PipelineVisitor):
            bags: dict[Any, Any] = dataclasses.field(default_factory=collections.OrderedDict)

            def _bag_of(self, value: Any) -> Any:
                bag = self.bags.get(value.producer)
                if bag is None:
                    return None
                if isinstance(value.producer.transform, beam.ParDo):  # its bag holds all of its tags
                    bag = bag.filter(_of_tag(value.tag)).map(_untagged) if value.tag else bag.filter(_of_tag(None))
                return bag

            def visit_transform(self, transform_node: Any) -> None:
                op_class = dask_runner.TRANSLATIONS.get(transform_node.transform.__class__, NoOp)
                op = op_class(transform_node, bag_kwargs=bag_kwargs)
                op_kws: dict[str, Any] = {"input_bag": None, "side_inputs": None}
                inputs = list(transform_node.inputs)
                if inputs:
                    bag_inputs = []
                    for input_value in inputs:
                        if isinstance(input_value, pvalue.PBegin):
                            bag_inputs.append(None)
                        bag = self._bag_of(input_value) if input_value.producer in self.bags else None
                        if bag is not None:
                            bag_inputs.append(bag)
                    if len(bag_inputs) == 1 and not isinstance(op, te.Flatten):
                        op_kws["input_bag"] = bag_inputs[0]
                    else:
                        op_kws["input_bag"] = bag_inputs
                side_inputs = list(transform_node.side_inputs)
                if side_inputs:
                    op_kws["side_inputs"] = [
                        dask_runner.SideInputMap(type(si), si._view_options(), te.DaskBagWindowedIterator(
                            self._bag_of(si.pvalue), si._window_mapping_fn))
                        for si in side_inputs]
                self.bags[transform_node] = op.apply(**op_kws)

        return TaggedBagVisitor()

    def run_pipeline(self, pipeline: Any, options: Any) -> Any:
        limit = options.view_as(dask_runner.DaskOptions).get_all_options().get("npartitions")
        _LIMIT["partitions"] = int(limit or 0)  # 0: the cluster's threads, once Beam has connected
        saved = dict(dask_runner.TRANSLATIONS)
        dask_runner.TRANSLATIONS.update({_GroupByKeyOnly: _BoundedGroupByKey, _Flatten: _BoundedFlatten,
                                         beam.ParDo: _TaggedParDo})
        try:
            result = super().run_pipeline(pipeline, options)
        finally:
            dask_runner.TRANSLATIONS.clear()
            dask_runner.TRANSLATIONS.update(saved)
        return _ClosingResult(client=result.client, futures=result.futures)


class _ClosingResult(dask_runner.DaskRunnerResult):
    """Beam's result, whose client is closed once the pipeline is done: Beam's stays connected, and when the
    cluster goes away it retries for 30 s and logs a traceback into the launcher's stderr."""

    def wait_until_finish(self, duration: float | None = None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            if self.state in (beam.runners.runner.PipelineState.DONE, beam.runners.runner.PipelineState.FAILED):
                self.client.close()
