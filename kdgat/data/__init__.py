"""Traffic to graphs, for every modality: readers, graph builders, leak-free splits, vocabulary and
normalisation fitted on training data, the content-keyed cache; it knows no model or stage."""
