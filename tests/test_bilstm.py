import torch

from kdedge.models.bilstm import BiLSTMConfig, BiLSTMStudent, reverse_within_length


def _model(pair=False, seed=0):
    torch.manual_seed(seed)
    model = BiLSTMStudent(BiLSTMConfig(vocab_size=50, num_labels=3, embedding_dim=8, lstm_hidden=6,
                                       mlp_hidden=10, pair=pair))
    return model.eval()


def _pad(seqs, width):
    ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
    return ids, (ids != 0).long()


def test_reverse_within_length_keeps_padding_in_place():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_within_length(x, torch.tensor([3, 5])).squeeze(-1)
    assert out.tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]


def test_padded_batch_gives_each_sequence_its_unpadded_result():
    model = _model()
    seqs = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14]]
    ids, mask = _pad(seqs, 9)
    batched = model(ids, mask)
    for i, s in enumerate(seqs):
        alone = model(torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long))
        torch.testing.assert_close(batched[i], alone[0], atol=1e-6, rtol=1e-5)


def test_padding_values_never_matter():
    model = _model()
    ids, mask = _pad([[5, 6, 7], [8, 9]], 6)
    other = ids.clone()
    other[mask == 0] = 42  # garbage in padded positions
    torch.testing.assert_close(model(ids, mask), model(other, mask))


def test_backward_direction_sees_the_sequence_reversed():
    """Order matters through both directions: reversing a sequence changes the output."""
    model = _model()
    a = model(torch.tensor([[5, 6, 7, 8]]), torch.ones(1, 4, dtype=torch.long))
    b = model(torch.tensor([[8, 7, 6, 5]]), torch.ones(1, 4, dtype=torch.long))
    assert not torch.allclose(a, b)


def test_siamese_pair_features():
    model = _model(pair=True)
    assert model.classifier[0].in_features == 4 * 2 * 6
    ids, mask = _pad([[5, 6], [7, 8, 9]], 4)
    ids_b, mask_b = _pad([[10], [11, 12]], 3)
    out = model(ids, mask, ids_b, mask_b)
    assert out.shape == (2, 3)
    # swapping the two sides keeps |u-v| and u*v but swaps u and v: a different input to the MLP
    assert not torch.allclose(out, model(ids_b, mask_b, ids, mask))


def test_word_vocabulary_keeps_the_most_frequent_words_under_a_cap():
    from kdedge.models.word_vectors import build_word_tokenizer

    texts = ["the film", "the plot", "the film is long", "a plot", "film"]  # the 3, film 3, plot 2, others 1
    assert len(build_word_tokenizer(texts).get_vocab()) == 2 + 6
    assert set(build_word_tokenizer(texts, max_words=2).get_vocab()) == {"[PAD]", "[UNK]", "the", "film"}
    assert set(build_word_tokenizer(texts, min_freq=2).get_vocab()) == {"[PAD]", "[UNK]", "the", "film", "plot"}
