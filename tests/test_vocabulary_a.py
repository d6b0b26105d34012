"""Rubric vocabulary for q01-q12, written blind (issue 23): each key point in a practitioner's words
(library and API names, symptoms, actions) and each misconception the way someone who holds it says it
(plain assertions, "X is just Y", "you don't need Z", k-NN/YOLO/lemmatiser spellings). Every sentence
here was written for these tests from the rubric's points and claims, never taken from a data set.

The paraphrases and wrong claims were missed by the rubrics of 9ad8c66; the corrections must stay
unflagged, so the new misconception cues do not fire on an answer that names a wrong idea to reject it.
"""

from __future__ import annotations

import pytest

from mlgrade.graders.offline import OfflineGrader

GRADER = OfflineGrader()

# (question, misconception, the wrong claim stated in other words than the rubric's claim)
WRONG_CLAIMS = [
    ('q01', 'same-as-self-supervised',
     "Semi-supervised learning is basically what people now call self-supervised learning, like BERT's masked words."),
    ('q01', 'same-as-self-supervised',
     'Semi-supervised and self-supervised learning are two names for one idea.'),
    ('q01', 'unlabelled-always-helps',
     'Adding more unlabelled samples is guaranteed to improve accuracy.'),
    ('q01', 'pseudo-labels-as-ground-truth',
     'Once the model has pseudo-labelled the data, those labels are as trustworthy as human ones.'),
    ('q01', 'no-labels-needed',
     "Semi-supervised methods don't need any labels; they find the structure by themselves."),
    ('q02', 'deep-learning-always',
     "Honestly I'd just go with a deep neural network, since it will always beat the classic models."),
    ('q02', 'data-type-alone-decides',
     'The only thing that decides the algorithm is whether the data is labelled or not.'),
    ('q03', 'confused-with-kmeans',
     'k-NN is a clustering algorithm that groups the points into k groups.'),
    ('q03', 'confused-with-kmeans',
     'The k-NN algorithm finds k cluster centres and assigns each point to the closest one.'),
    ('q03', 'learns-weights',
     'During training, k-NN learns a weight for every feature.'),
    ('q03', 'learns-weights',
     'The k-NN model is fitted with gradient descent like logistic regression.'),
    ('q03', 'prediction-is-fast',
     'Prediction with k-NN is cheap, so it scales well to millions of rows.'),
    ('q03', 'no-scaling-needed',
     "With k-NN you don't need to normalise the features."),
    ('q03', 'fine-in-high-dimensions',
     'k-NN works great even with thousands of features.'),
    ('q03', 'fine-in-high-dimensions',
     'KNN handles high-dimensional data without any problem.'),
    ('q03', 'k1-best',
     'The best k is 1, since it fits the training data perfectly.'),
    ('q04', 'impurity-is-reliable',
     'The built-in feature_importances_ of a random forest is an unbiased ranking you can trust.'),
    ('q04', 'correlation-equals-importance',
     'The most correlated feature with the target is the most important one for the model.'),
    ('q04', 'low-importance-useless',
     'Any feature with near-zero importance can be removed without a second thought.'),
    ('q05', 'always-scale',
     'You should scale the features for every model, random forests included.'),
    ('q05', 'always-scale',
     'Even gradient-boosted trees need their inputs standardised or they split badly.'),
    ('q05', 'always-scale',
     'Tree-based models like XGBoost also require normalised features.'),
    ('q05', 'scaling-fixes-outliers',
     'Standardising the data gets rid of the outliers.'),
    ('q05', 'scaling-fixes-outliers',
     'StandardScaler is robust to outliers, so I use it when the data has extreme values.'),
    ('q05', 'fit-before-split',
     'I normalise the whole dataset first and then do the train/test split.'),
    ('q05', 'fit-before-split',
     'Call fit_transform on the full dataset, then split it into training and test sets.'),
    ('q05', 'standardising-normalises-distribution',
     'Standardisation turns each feature into a Gaussian with mean 0 and variance 1.'),
    ('q05', 'most-algorithms-distance',
     'Most machine learning models compute distances between points, which is why scaling matters.'),
    ('q06', 'add-capacity',
     'I would engineer more features so the model has more information to fit.'),
    ('q06', 'boosting-for-variance',
     'Boosting is the standard remedy for high variance.'),
    ('q06', 'low-bias-is-the-problem',
     'The low bias is what makes it fail on new data, so we should raise the bias.'),
    ('q07', 'shuffled-kfold-ok',
     'I would randomly split the observations into five folds and average the scores.'),
    ('q07', 'loocv-for-time-series',
     'Leave-one-out cross-validation is the most accurate option for a time series.'),
    ('q07', 'cv-prevents-overfitting',
     'We use cross-validation so the model does not overfit.'),
    ('q07', 'preprocess-whole-series',
     'First normalise the entire series, then create the folds.'),
    ('q08', 'conv-params-scale-with-image',
     'A convolution on a bigger image needs more weights, just like a dense layer.'),
    ('q08', 'conv-params-scale-with-image',
     'The number of parameters in a CNN grows with the image resolution.'),
    ('q08', 'cnn-cost-independent-of-resolution',
     'Because the weights are shared, a CNN costs the same to run on any image size.'),
    ('q08', 'only-a-storage-problem',
     'Big images are only a problem for disk space; the learning itself is unaffected.'),
    ('q08', 'dense-params-independent',
     'The number of weights in a dense layer depends only on how many neurons it has, not on the input size.'),
    ('q08', 'dataset-size-confusion',
     'The inputs get huge because vision datasets have millions of images.'),
    ('q09', 'scratch-is-fine',
     "I'd build a small CNN and train it from random initialisation; with enough epochs it will learn."),
    ('q09', 'high-lr-full-finetune',
     'Unfreeze every layer straight away and fine-tune with the usual learning rate of 0.1.'),
    ('q09', 'high-lr-full-finetune',
     'I would fine-tune the whole network from the first epoch with a large learning rate.'),
    ('q09', 'augment-eval-data',
     'Augment all the images first and then split them into train, validation and test.'),
    ('q09', 'augment-eval-data',
     'Adding flipped copies to the test set makes the evaluation more reliable.'),
    ('q09', 'weights-free-to-use',
     'Pretrained weights are free for any use, so licences are not something to worry about.'),
    ('q09', 'same-classes-needed',
     'Transfer learning only works when your classes are among the ImageNet classes.'),
    ('q10', 'image-classifier',
     'YOLO can only find a single object in each image.'),
    ('q10', 'always-most-accurate',
     'YOLO is more accurate than any other detector, including two-stage ones.'),
    ('q10', 'small-objects-strength',
     'YOLO is especially good at detecting tiny objects in crowded scenes.'),
    ('q11', 'syntax-is-meaning',
     'Parsing tells you whether a sentence makes sense logically.'),
    ('q11', 'parsing-is-tokenising',
     'Syntactic analysis is the step where the text is broken into individual words and sentences.'),
    ('q11', 'pos-equals-parsing',
     'Part-of-speech tagging and parsing are the same thing.'),
    ('q12', 'stems-are-words',
     'Stemming always gives you a proper dictionary word, just a shorter one.'),
    ('q12', 'always-preprocess',
     'Stemming is a required preprocessing step for transformer models.'),
]

# (question, a correct statement that names a wrong idea to reject it: no misconception)
CORRECTIONS = [
    ('q01', 'Self-supervised learning is a different thing: it builds its own targets from raw data, with no human labels.'),
    ('q01', 'Unlabelled data does not always help; if the cluster assumption fails it can make the model worse.'),
    ('q01', 'Pseudo-labels are not ground truth, so we evaluate only on a held-out set labelled by people.'),
    ('q01', 'It still needs some labels; with no labels at all it would be unsupervised learning.'),
    ('q01', 'Cluster-then-label is only one of several approaches, next to self-training and label propagation.'),
    ('q02', 'No single algorithm is best for every dataset, so I compare a few on validation data.'),
    ('q02', 'A deep network is not automatically the best choice; on small tables boosted trees usually win.'),
    ('q02', 'Training accuracy says little about new data, so I compare the candidates on held-out data.'),
    ('q03', 'k-NN is not a clustering method; it needs labelled neighbours, unlike k-means.'),
    ('q03', 'k-NN learns no weights; fitting just stores the training set.'),
    ('q03', 'Prediction is slow, since every query computes distances to all stored points.'),
    ('q03', 'Without scaling, the feature with the largest range dominates the distance, so k-NN needs scaled features.'),
    ('q03', 'A k of 1 is rarely best, because it overfits noise.'),
    ('q03', 'It suffers from the curse of dimensionality, so it does not work well with many irrelevant features.'),
    ('q04', 'Importance describes the model, not the world; it does not show that the feature causes the outcome.'),
    ('q04', 'Impurity importance is biased toward high-cardinality features, so I check it with permutation importance.'),
    ('q04', 'Correlation with the target is not the same as importance in the model, because of interactions.'),
    ('q04', 'A feature with low importance is not necessarily useless: a correlated twin may be taking its credit.'),
    ('q05', 'Trees split on thresholds of one feature at a time, so they do not need scaling.'),
    ('q05', 'Scaling does not remove outliers; min-max scaling is actually distorted by them.'),
    ('q05', 'Fit the scaler on the training data only; fitting it before the split leaks test statistics.'),
    ('q05', 'Standardising changes the mean and spread but not the shape, so a skewed feature stays skewed.'),
    ('q05', 'Only some algorithms use distances, such as k-NN and k-means.'),
    ('q06', 'Adding layers or features would make the overfitting worse, so simplify the model instead.'),
    ('q06', 'Bagging reduces variance; boosting mainly reduces bias.'),
    ('q06', 'Bagging trains each model on a bootstrap sample drawn with replacement, so the samples overlap.'),
    ('q06', 'High variance is overfitting, not underfitting: the training error is low and the validation error is high.'),
    ('q06', 'Increase the regularisation, for example a larger L2 penalty or more dropout.'),
    ('q06', 'Training longer usually makes overfitting worse; use early stopping instead.'),
    ('q07', 'Shuffled k-fold leaks the future into training, so use forward chaining instead.'),
    ('q07', 'Leave-one-out is a poor fit here, because the held-out point sits between training points in time.'),
    ('q07', 'Stratification does nothing about the time order, so it does not help.'),
    ('q07', 'Cross-validation measures overfitting; it does not prevent it.'),
    ('q07', 'Fit the scaler inside each training fold, never on the whole series.'),
    ('q08', 'The parameter count of a convolution does not depend on the image size, thanks to weight sharing.'),
    ('q08', 'Compute and activation memory still grow with the resolution, so images are resized.'),
    ('q08', "A dense layer's weights are inputs times units, so they grow with the image."),
    ('q08', 'Weight sharing and local connectivity matter more than pooling.'),
    ('q08', 'The problem is the number of values per image, not the number of images.'),
    ('q09', 'Training a deep CNN from scratch on a few hundred images overfits, so start from pretrained weights.'),
    ('q09', 'Keep the backbone frozen at first and use a small learning rate when you unfreeze it.'),
    ('q09', 'Augment only the training split; the validation and test images stay untouched.'),
    ('q09', 'Check the licence of the pretrained weights before any commercial use.'),
    ('q09', 'The new classes do not need to be ImageNet classes; the new head learns them.'),
    ('q10', 'Unlike sliding-window methods, YOLO looks at the whole image once.'),
    ('q10', 'YOLO outputs boxes and classes for every object, not one label per image.'),
    ('q10', 'YOLO is not always the most accurate detector; two-stage models can localise better.'),
    ('q10', 'Overlapping duplicate boxes are removed with non-maximum suppression.'),
    ('q10', 'YOLO runs in real time, much faster than two-stage detectors.'),
    ('q10', 'Early YOLO versions struggled with small objects in groups.'),
    ('q11', 'Syntactic analysis is about structure, not meaning; meaning is the job of semantic analysis.'),
    ('q11', 'Tokenisation comes before parsing; it is not parsing itself.'),
    ('q11', 'POS tagging labels each word, while parsing builds the tree that links them.'),
    ('q11', 'Word order matters a lot: "dog bites man" and "man bites dog" have different structures.'),
    ('q12', 'Stemming often produces non-words such as "studi", unlike lemmatization.'),
    ('q12', 'Stemming and lemmatization are not the same: one chops suffixes, the other looks up the lemma.'),
    ('q12', 'Lemmatization needs the part of speech, because "meeting" can be a noun or a verb.'),
    ('q12', 'Transformers like BERT usually need no stemming, since their subword tokenizer handles word forms.'),
    ('q12', 'Stemming is faster; lemmatization is slower because it needs a dictionary.'),
]

# (question, key point, the point in a practitioner's words)
POINTS = [
    ('q01', 'labelled-plus-unlabelled',
     'Only a labelled subset of the records has a target; we use the rest anyway.'),
    ('q01', 'concrete-methods',
     'A teacher-student setup such as Noisy Student retrains on its own confident predictions.'),
    ('q01', 'pitfalls-and-evaluation',
     'Wrong pseudo labels snowball, so keep a confidence threshold and watch for drift.'),
    ('q02', 'data-characteristics',
     'Sample size, sparse categorical features and outliers all push the choice one way or another.'),
    ('q03', 'choosing-k',
     'Tune n_neighbors with a grid search; a tiny k chases noise and a big k blurs the classes.'),
    ('q03', 'prediction-cost',
     'Brute force means a linear scan over every stored row per query, so use a BallTree or HNSW index.'),
    ('q03', 'scaling-and-metric',
     'Put a StandardScaler in front and pick Minkowski or Hamming distance to suit the data.'),
    ('q06', 'feature-reduction',
     'Drop irrelevant columns, for instance with recursive feature elimination or SelectKBest.'),
    ('q09', 'head-and-finetune-strategy',
     'Set requires_grad to False on the backbone and train only the classifier head first.'),
    ('q09', 'data-augmentation',
     'Use Albumentations or RandAugment: brightness shifts, zoom, shear and cutout.'),
    ('q10', 'nms',
     'Low scores are dropped with a score threshold and redundant boxes with an IoU threshold.'),
]


def _judge(bank, qid: str, text: str):
    return GRADER.judge(bank.get(qid), text)


@pytest.mark.parametrize(("qid", "mid", "text"), WRONG_CLAIMS)
def test_wrong_claim_in_other_words_is_flagged(bank, qid, mid, text):
    found = [m.id for m in _judge(bank, qid, text).misconceptions]
    assert mid in found, found


@pytest.mark.parametrize(("qid", "text"), CORRECTIONS)
def test_rejecting_a_wrong_idea_is_not_flagged(bank, qid, text):
    assert [m.id for m in _judge(bank, qid, text).misconceptions] == []


@pytest.mark.parametrize(("qid", "point", "text"), POINTS)
def test_point_in_practitioner_words_earns_credit(bank, qid, point, text):
    a = _judge(bank, qid, text)
    status = next(j.status for j in a.judgments if j.key_point == point)
    assert status in ("covered", "partial"), a.judgments
    assert [m.id for m in a.misconceptions] == [], a.misconceptions


def test_every_question_of_the_range_is_probed():
    qids = {q for q, *_ in WRONG_CLAIMS} | {q for q, *_ in POINTS}
    assert qids == {f"q{n:02d}" for n in range(1, 13)}
