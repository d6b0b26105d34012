"""Misconceptions for q01-q12 that the rubrics did not list before issue 23, and other ways to state
listed ones, written blind (never from a data set's answers): swapped roles (a large k overfits,
stemming looks words up, dependency parses build phrases), conflations (semi-supervised learning as
active learning, parsing as text cleaning or entity extraction), wrong accounts of a cost or a
saving (a query only compares k points, stemming saves storage), wrong figures (62,500 inputs for
a colour image) and wrong procedures (choosing on the test set, a scaler fitted on the test set).

Each wrong claim below is stated in other words than the rubric's claim and its cues' probe, and
must be flagged with its id; each correct statement names the idea or rejects it and must stay
unflagged. Every wrong claim here went unflagged by the rubrics of 2b3dba7.
"""

from __future__ import annotations

import pytest

from mlgrade.graders.offline import OfflineGrader
from mlgrade.rubrics import load_rubrics

BANK = load_rubrics()
GRADER = OfflineGrader()

# (question, misconception, a wrong statement of it)
WRONG = [
    ("q01", "labelled-majority", "Semi-supervised learning is when most of the data is labeled and only a little is not."),
    ("q01", "labelled-majority", "The word semi means half, so half of the data is labelled and half unlabelled."),
    ("q01", "same-as-active-learning", "Semi-supervised learning queries an expert whenever the model is unsure of a point."),
    ("q01", "same-as-active-learning", "It is basically the same as active learning: the model picks points for people to label."),
    ("q02", "select-on-test-set", "Fit every candidate and use the test set to pick the winner."),
    ("q02", "select-on-test-set", "I would tune the hyperparameters on the test set until the score stops improving."),
    ("q02", "deep-for-small-data", "When the dataset is tiny, neural networks work best on small data since they extract features."),
    ("q02", "deep-for-small-data", "Deep learning needs less data than the classic methods."),
    ("q02", "accuracy-always-metric", "Accuracy is the only metric that matters when you compare models."),
    ("q02", "accuracy-always-metric", "I only look at accuracy to decide."),
    ("q03", "k-direction-swapped", "If you choose a large k the model overfits to noise."),
    ("q03", "k-direction-swapped", "Increasing k increases the variance of the classifier."),
    ("q03", "k-direction-swapped", "A small k tends to underfit the data."),
    ("q03", "classification-only", "KNN is only used for classification tasks."),
    ("q03", "classification-only", "The method cannot do regression, it only outputs classes."),
    ("q03", "cost-only-k-points", "At query time it only compares the new point to the k neighbours, which keeps it cheap."),
    ("q03", "cost-only-k-points", "Each prediction is O(k), so it does not grow with the dataset."),
    ("q03", "prediction-is-fast", "Training is slow because the algorithm has to organise all the examples."),
    ("q03", "prediction-is-fast", "Once fitted, KNN predicts in constant time."),
    ("q03", "learns-weights", "During fitting the distance metric is learned from the labels."),
    ("q03", "learns-weights", "In KNN, k is a learned parameter, found while training."),
    ("q03", "no-scaling-needed", "Euclidean distance is scale-invariant, so feature ranges do not matter."),
    ("q04", "raw-coefficients", "The larger the coefficient, the more important the feature, whatever scale it is on."),
    ("q04", "raw-coefficients", "For regression I rank features by their raw coefficients."),
    ("q04", "permutation-retrains", "Permutation importance drops the feature and fits the model again to see the loss."),
    ("q04", "permutation-retrains", "You shuffle each feature and retrain, then compare the errors."),
    ("q05", "minmax-standard-swapped", "Standardisation maps the data between 0 and 1."),
    ("q05", "minmax-standard-swapped", "Normalization and standardization are the same thing, just two names."),
    ("q05", "minmax-standard-swapped", "Min-max scaling gives zero mean and unit variance."),
    ("q05", "fit-scaler-on-test", "For the test data, fit a new scaler on the test set so its statistics are right."),
    ("q05", "fit-scaler-on-test", "Call fit_transform on the test features as well."),
    ("q06", "remedies-cut-bias", "Bagging lowers bias because many trees vote."),
    ("q06", "remedies-cut-bias", "Regularization reduces the bias of the network, which helps here."),
    ("q06", "remedies-cut-bias", "Dropout reduces bias by switching off neurons."),
    ("q07", "unshuffled-kfold-ok", "Regular k-fold without shuffling works because every fold keeps its order."),
    ("q07", "unshuffled-kfold-ok", "KFold is fine if you don't shuffle the rows."),
    ("q07", "test-on-the-past", "Train on the newest data and test on the oldest part of the history."),
    ("q07", "test-on-the-past", "I would hold out the earliest year and fit on everything after it."),
    ("q07", "window-types-swapped", "A sliding window keeps all the past data and grows each fold."),
    ("q07", "window-types-swapped", "The expanding window discards the oldest observations at every step."),
    ("q07", "shuffled-kfold-ok", "Once the series is stationary you can shuffle it and use ordinary folds."),
    ("q08", "forgets-channels", "A 250x250 RGB picture has 62,500 input values for the network."),
    ("q08", "forgets-channels", "With 1,000 hidden units that is 62.5 million weights."),
    ("q08", "flattening-keeps-structure", "Flattening keeps the spatial information, it only changes the shape."),
    ("q08", "flattening-keeps-structure", "Fully connected layers capture spatial patterns just as well as convolutions."),
    ("q08", "weight-sharing-across-layers", "Thanks to weight sharing, every layer uses the same weights, so the model stays small."),
    ("q08", "weight-sharing-across-layers", "In a CNN the weights are shared between the layers."),
    ("q08", "dataset-size-confusion", "More images means more parameters, so big datasets blow up the model."),
    ("q08", "cnn-cost-independent-of-resolution", "With a CNN the compute stays constant whatever the picture size."),
    ("q08", "pooling-is-the-fix", "Convolution compresses the image so the network sees fewer values."),
    ("q09", "freeze-wrong-end", "Freeze the final layers of the pretrained net and train the early ones again."),
    ("q09", "freeze-wrong-end", "The early layers learn high-level, task-specific features, so those are the ones to retrain."),
    ("q09", "freeze-wrong-end", "Keep the original classifier from ImageNet and fine-tune the convolutional blocks."),
    ("q09", "bigger-model-small-data", "Because the data is limited, make the model bigger so it can squeeze out more."),
    ("q09", "bigger-model-small-data", "A bigger network will compensate for having few images."),
    ("q09", "no-validation-split", "With so few pictures there is no need for a validation set."),
    ("q09", "no-validation-split", "Use all of the data for training, since every image counts."),
    ("q10", "cells-run-separately", "It divides the image into a grid and feeds each cell into the network on its own."),
    ("q10", "cells-run-separately", "Every grid cell is processed separately by the CNN."),
    ("q10", "yolo-is-slow", "Two-stage detectors are faster than YOLO in practice."),
    ("q11", "dependency-constituency-swapped", "Constituency parsing links each word to its head word."),
    ("q11", "dependency-constituency-swapped", "A dependency parse groups words into noun phrases and verb phrases."),
    ("q11", "is-text-cleaning", "Syntactic analysis cleans the text, for example removing punctuation and stop words."),
    ("q11", "is-text-cleaning", "Syntactic analysis reduces words to their root so that the model sees fewer forms."),
    ("q11", "is-entity-or-keyword-extraction", "Syntactic analysis extracts keywords from a document."),
    ("q11", "is-entity-or-keyword-extraction", "In NLP, syntactic analysis finds named entities such as cities and companies."),
    ("q11", "syntax-is-meaning", "Syntactic analysis detects the sentiment of a review."),
    ("q11", "syntax-is-meaning", "The parser figures out the meaning of each sentence."),
    ("q11", "syntax-is-meaning", "Syntactic analysis captures the semantics of the text."),
    ("q11", "syntax-is-meaning", "Parsing captures the meaning of what the user wrote."),
    ("q12", "stems-are-words", "Both produce valid words, lemmatization is just more careful about it."),
    ("q12", "stems-are-words", "Stemming and lemmatization both return the dictionary form of the word."),
    ("q12", "stemming-uses-dictionary", "Stemming looks up the word in WordNet and returns its base."),
    ("q12", "stemming-uses-dictionary", "Stemming is dictionary-based, whereas lemmatization is just rules."),
    ("q12", "stemmer-handles-irregular", "The stemmer maps went to go and ran to run."),
    ("q12", "stemming-uses-dictionary", "The Porter stemmer uses a dictionary of English roots."),
    ("q12", "stemmer-handles-irregular", "Stemming turns better into good and mice into mouse."),
    ("q12", "stemmer-handles-irregular", "Stemming handles irregular verbs well."),
    ("q12", "stemming-for-storage", "Stemming is mainly used to save space in search indexes."),
    ("q12", "stemming-for-storage", "The main purpose of stemming is to save memory."),
]

# (question, a correct statement that names or rejects a wrong idea above, or avoids it)
RIGHT = [
    ("q01", "Only a small labelled set is needed, alongside a far larger unlabelled one."),
    ("q01", "Unlike active learning, which asks an annotator for labels, semi-supervised learning uses the unlabelled data as it is."),
    ("q02", "Never use the test set to pick the model; it is only for the final estimate."),
    ("q02", "With little data, neural networks are usually a poor fit and simpler models win."),
    ("q02", "Accuracy is not always the right metric, especially with imbalanced classes."),
    ("q03", "A large k underfits and a small k overfits, so tune k by cross-validation."),
    ("q03", "KNN is not only for classification; for regression it averages the neighbours."),
    ("q03", "It cannot compare only the k neighbours, because it first needs the distance to every stored point."),
    ("q03", "KNN is a non-parametric method; k is a hyperparameter chosen by cross-validation, not learned."),
    ("q03", "Training is cheap since it just stores the data, while each prediction scans it all."),
    ("q04", "Coefficients are comparable only after standardising, so raw coefficients are misleading."),
    ("q04", "Permutation importance shuffles one column in validation data and needs no retraining."),
    ("q05", "Min-max scaling maps each feature to between 0 and 1, whereas standardisation centres it at zero with unit variance."),
    ("q05", "Never fit the scaler on the test set; reuse the one fitted on the training data."),
    ("q06", "Bagging reduces variance, not bias, and regularisation trades a little more bias for less variance."),
    ("q06", "Dropout lowers variance by making the network rely on no single unit."),
    ("q07", "Even k-fold without shuffling leaks, since later folds train the model that scores earlier ones."),
    ("q07", "Train on older data and test on the block that follows it, never on older data."),
    ("q07", "An expanding window keeps the whole history, while a sliding window keeps a fixed length."),
    ("q08", "250 times 250 is 62,500 pixels per channel, times three channels gives 187,500 inputs."),
    ("q08", "Flattening throws away the spatial layout, which convolutions keep."),
    ("q08", "Weights are shared across positions, not across layers: each layer has its own kernels."),
    ("q09", "Freeze the early layers, which hold generic edges and textures, and train the last layers and the new head."),
    ("q09", "Keep a validation set even when data is scarce, or use stratified cross-validation."),
    ("q09", "Do not make the network bigger to compensate; more capacity memorises the few images."),
    ("q10", "YOLO runs one network over the whole image and predicts boxes for every grid cell at once."),
    ("q10", "Two-stage detectors such as Faster R-CNN are usually slower than YOLO."),
    ("q11", "Dependency parsing links each word to its head, while constituency parsing groups words into nested phrases."),
    ("q11", "Syntactic analysis is not stop-word removal or stemming; it recovers grammatical structure."),
    ("q11", "The parser recovers structure; the semantics of the sentence are left to semantic analysis."),
    ("q11", "Named entity recognition is a different task from syntactic analysis, which builds a parse tree."),
    ("q12", "Lemmatization is slower than stemming because it looks up a dictionary."),
    ("q12", "Only the lemmatizer returns the dictionary form; stems are often not words at all."),
    ("q12", "A stemmer cannot map went to go; that needs a lemmatizer with a lexicon."),
    ("q12", "Search engines stem to raise recall; the smaller index is a side effect."),
]


def _flags(qid: str, text: str) -> list[str]:
    return [m.id for m in GRADER.judge(BANK.get(qid), text).misconceptions]


@pytest.mark.parametrize("qid,mid,text", WRONG, ids=[f"{q}-{m}-{i}" for i, (q, m, _) in enumerate(WRONG)])
def test_wrong_claim_in_other_words_is_flagged(qid, mid, text):
    assert mid in _flags(qid, text), text


@pytest.mark.parametrize("qid,text", RIGHT, ids=[f"{q}-{i}" for i, (q, _) in enumerate(RIGHT)])
def test_correct_statement_is_not_flagged(qid, text):
    assert _flags(qid, text) == [], text


def test_every_new_misconception_is_probed_twice():
    """Each misconception added for issue 23 has at least two wrong statements here."""
    new = {("q01", "labelled-majority"), ("q01", "same-as-active-learning"), ("q02", "select-on-test-set"),
           ("q02", "deep-for-small-data"), ("q02", "accuracy-always-metric"), ("q03", "k-direction-swapped"),
           ("q03", "classification-only"), ("q03", "cost-only-k-points"), ("q04", "raw-coefficients"),
           ("q04", "permutation-retrains"), ("q05", "minmax-standard-swapped"), ("q05", "fit-scaler-on-test"),
           ("q06", "remedies-cut-bias"), ("q07", "unshuffled-kfold-ok"), ("q07", "test-on-the-past"),
           ("q07", "window-types-swapped"), ("q08", "forgets-channels"), ("q08", "flattening-keeps-structure"),
           ("q08", "weight-sharing-across-layers"), ("q09", "freeze-wrong-end"), ("q09", "bigger-model-small-data"),
           ("q09", "no-validation-split"), ("q10", "cells-run-separately"), ("q11", "dependency-constituency-swapped"),
           ("q11", "is-text-cleaning"), ("q11", "is-entity-or-keyword-extraction"), ("q12", "stemming-uses-dictionary"),
           ("q12", "stemmer-handles-irregular"), ("q12", "stemming-for-storage")}
    for qid, mid in new:
        assert BANK.get(qid).misconception(mid) is not None, (qid, mid)
        assert sum(1 for q, m, _ in WRONG if (q, m) == (qid, mid)) >= 2, (qid, mid)
