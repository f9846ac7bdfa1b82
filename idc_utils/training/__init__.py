"""Training: the recipe (configuration), devices, compiling, class weights, the fit loop and its
callbacks, phase 1 on cached features, reuse of an identical earlier training, the ensemble, and
the diffusion generator. Imports core, data, models and evaluation; never serving."""
