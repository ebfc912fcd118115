"""Update jobs: status, progress, typed events, cancel; the contract with the worker."""
