"""Benchmarks as data: experiments declared in YAML (:mod:`.spec`), one runner (:mod:`.runner`), one results
format (:mod:`.results`) and the tables made from it (:mod:`.tables`)."""
